"""The cost of agency scoping on the back office's busiest page, the client list.

Builds ``n`` clients spread over eight agencies, then loads the first page of the admin's
client list (search included) as an agency manager, whose queries go through
``visible_to``, and as an administrator, who sees everything unscoped. Prints pages/s
for both; a ratio near 1 means scoping costs nothing noticeable.

    python -m bench.scoping [--n 20000]
"""

from bench.harness import bench_database, emit_comparison, parse_args, timed

PAGES = 30


def main() -> None:
    args = parse_args(__doc__ or "", default_n=5000)
    with bench_database() as database:
        from django.test import Client as Browser

        from mwolo.accounts.tests.factories import AdministratorFactory, EmployeeFactory
        from mwolo.core.permissions import Role
        from mwolo.crm.tests.bulk import bulk_clients

        agencies = bulk_clients(count=args.n, agency_count=8)
        manager = Browser()
        manager.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=agencies[0]))
        administrator = Browser()
        administrator.force_login(AdministratorFactory())

        def load(browser: Browser) -> None:
            for page in range(PAGES):
                url = "/admin/crm/client/" + ("?q=Mukendi" if page % 2 else "")
                assert browser.get(url).status_code == 200  # noqa: S101

        load(manager)  # warm caches and templates
        scoped = PAGES / timed(lambda: load(manager))
        unscoped = PAGES / timed(lambda: load(administrator))
        emit_comparison(
            "scoping_client_list",
            scoped,
            "pages/s",
            args.n,
            database,
            baseline="unscoped administrator list",
            baseline_value=unscoped,
        )


if __name__ == "__main__":
    main()
