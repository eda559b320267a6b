"""The demo's data tables: agencies, names, streets, kinds of companies, connection requests.

Plain data; ``services.py`` turns it into records. Street names are ones really used in
these cities (which quarter each runs through is approximate); house numbers, people,
companies and RCCM numbers are invented. GPS points are approximate commune centres: the
seed scatters records a few hundred metres around them. Unconfirmed details are fine here:
this is demo data, never reference data.
"""

from dataclasses import dataclass

from mwolo.crm.models import SiteCategory

# The seed of every random choice: the same demo on every machine, run after run.
RANDOM_SEED = "mwolo-demo-v1"
DEFAULT_PASSWORD = "mwolo-demo-2026"  # noqa: S105 - documented; refused when DEBUG is off
PASSWORD_ENV = "MWOLO_DEMO_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEFAULT_CLIENT_COUNT = 300
# Demo clients' emails stay inside our own domain, so a misconfigured mail backend can
# never write to a stranger. (Their phone numbers are random valid ones: see the README.)
CLIENT_EMAIL_DOMAIN = "demo.mwolo.cd"
STAFF_EMAIL_DOMAIN = "mwolo.cd"


@dataclass(frozen=True)
class Area:
    """A commune an agency serves, with its approximate centre."""

    commune: str
    latitude: str
    longitude: str
    weight: int = 1


@dataclass(frozen=True)
class AgencyData:
    code: str
    slug: str  # in the staff usernames: manager.<slug>
    name: str
    province_code: str
    city: str  # the territory (ville) in geo
    commune: str
    address_line: str
    phone: str
    latitude: str
    longitude: str
    areas: tuple[Area, ...]  # the first is the agency's own commune
    streets: tuple[str, ...]
    rccm_registry: str  # the commercial court's code in RCCM numbers
    names: str  # key of REGIONAL_LAST_NAMES
    client_weight: int
    lunch_break: bool = False
    has_hr_officer: bool = False
    mining_region: bool = False

    @property
    def email(self) -> str:
        return f"agence.{self.slug}@{STAFF_EMAIL_DOMAIN}"


AGENCIES: tuple[AgencyData, ...] = (
    AgencyData(
        code="KIN-GOM",
        slug="gombe",
        name="Agence Kinshasa-Gombe (siège)",
        province_code="CD-KN",
        city="Kinshasa",
        commune="Gombe",
        address_line="45, boulevard du 30 Juin",
        phone="+243815550101",
        latitude="-4.304500",
        longitude="15.311000",
        areas=(
            Area("Gombe", "-4.305000", "15.308000", weight=3),
            Area("Lingwala", "-4.322000", "15.300000"),
            Area("Barumbu", "-4.315000", "15.325000"),
            Area("Kinshasa", "-4.328000", "15.312000"),
        ),
        streets=(
            "boulevard du 30 Juin",
            "avenue de la Justice",
            "avenue des Aviateurs",
            "avenue Colonel Ebeya",
            "avenue du Commerce",
            "avenue Batetela",
            "avenue Wagenia",
            "avenue de la Libération",
            "avenue des Huileries",
            "avenue Kabambare",
            "avenue Itaga",
            "avenue Kasa-Vubu",
        ),
        rccm_registry="KNG",
        names="kinshasa",
        client_weight=16,
        has_hr_officer=True,
    ),
    AgencyData(
        code="KIN-LIM",
        slug="limete",
        name="Agence Kinshasa-Limete",
        province_code="CD-KN",
        city="Kinshasa",
        commune="Limete",
        address_line="12, boulevard Lumumba, 1ère rue",
        phone="+243825550102",
        latitude="-4.370500",
        longitude="15.344000",
        areas=(
            Area("Limete", "-4.372000", "15.345000", weight=3),
            Area("Matete", "-4.386000", "15.333000"),
            Area("Lemba", "-4.402000", "15.320000"),
        ),
        streets=(
            "boulevard Lumumba",
            "avenue des Poids Lourds",
            "1ère rue",
            "5e rue",
            "7e rue",
            "10e rue",
            "12e rue",
            "14e rue",
            "avenue de l'Université",
            "avenue By-Pass",
        ),
        rccm_registry="KNM",
        names="kinshasa",
        client_weight=14,
    ),
    AgencyData(
        code="KIN-MAS",
        slug="masina",
        name="Agence Kinshasa-Masina",
        province_code="CD-KN",
        city="Kinshasa",
        commune="Masina",
        address_line="301, boulevard Lumumba, arrêt Pétro-Congo",
        phone="+243975550103",
        latitude="-4.383500",
        longitude="15.386000",
        areas=(
            Area("Masina", "-4.385000", "15.390000", weight=3),
            Area("Ndjili", "-4.402000", "15.365000"),
            Area("Kimbanseke", "-4.440000", "15.395000"),
        ),
        streets=(
            "boulevard Lumumba",
            "avenue de la Paix",
            "avenue du Marché",
            "avenue de l'École",
            "avenue Kikwit",
            "avenue Bandundu",
            "route de Mokali",
            "avenue Kingasani",
        ),
        rccm_registry="KNM",
        names="kinshasa",
        client_weight=16,
        lunch_break=True,
    ),
    AgencyData(
        code="LSH-CTR",
        slug="lubumbashi",
        name="Agence Lubumbashi",
        province_code="CD-HK",
        city="Lubumbashi",
        commune="Lubumbashi",
        address_line="220, avenue Mama Yemo",
        phone="+243995550104",
        latitude="-11.664000",
        longitude="27.480000",
        areas=(
            Area("Lubumbashi", "-11.664000", "27.479000", weight=3),
            Area("Kampemba", "-11.648000", "27.500000", weight=2),
            Area("Kenya", "-11.685000", "27.470000"),
            Area("Kamalondo", "-11.675000", "27.488000"),
            Area("Katuba", "-11.700000", "27.450000"),
            Area("Rwashi", "-11.630000", "27.515000"),
        ),
        streets=(
            "avenue Mama Yemo",
            "avenue Kasa-Vubu",
            "avenue Lumumba",
            "avenue Moïse Tshombe",
            "avenue Sendwe",
            "avenue Likasi",
            "avenue Lomami",
            "avenue Kilela Balanda",
            "avenue des Chutes",
            "avenue Ndjamena",
            "route Kasapa",
        ),
        rccm_registry="LSH",
        names="katanga",
        client_weight=16,
        has_hr_officer=True,
        mining_region=True,
    ),
    AgencyData(
        code="GOM-CTR",
        slug="goma",
        name="Agence Goma",
        province_code="CD-NK",
        city="Goma",
        commune="Goma",
        address_line="56, boulevard Kanyamuhanga",
        phone="+243975550105",
        latitude="-1.674500",
        longitude="29.229000",
        areas=(
            Area("Goma", "-1.679000", "29.228000", weight=2),
            Area("Karisimbi", "-1.655000", "29.215000"),
        ),
        streets=(
            "boulevard Kanyamuhanga",
            "avenue des Volcans",
            "avenue du Rond-Point",
            "avenue de la Paix",
            "avenue du Lac",
            "avenue Mont Goma",
            "route de Sake",
        ),
        rccm_registry="GOM",
        names="nord_kivu",
        client_weight=10,
        has_hr_officer=True,
        mining_region=True,
    ),
    AgencyData(
        code="BKV-IBA",
        slug="bukavu",
        name="Agence Bukavu",
        province_code="CD-SK",
        city="Bukavu",
        commune="Ibanda",
        address_line="88, avenue Patrice-Emery Lumumba",
        phone="+243825550106",
        latitude="-2.507000",
        longitude="28.860000",
        areas=(
            Area("Ibanda", "-2.508000", "28.862000", weight=2),
            Area("Kadutu", "-2.500000", "28.848000"),
            Area("Bagira", "-2.475000", "28.835000"),
        ),
        streets=(
            "avenue Patrice-Emery Lumumba",
            "avenue du Lac",
            "avenue de la Mission",
            "avenue des Écoles",
            "route de Kabare",
            "avenue Industrielle",
        ),
        rccm_registry="BKV",
        names="sud_kivu",
        client_weight=10,
        lunch_break=True,
        mining_region=True,
    ),
    AgencyData(
        code="MAT-CTR",
        slug="matadi",
        name="Agence Matadi",
        province_code="CD-BC",
        city="Matadi",
        commune="Matadi",
        address_line="10, avenue Kinkanda",
        phone="+243845550107",
        latitude="-5.823000",
        longitude="13.460000",
        areas=(
            Area("Matadi", "-5.823000", "13.460000", weight=2),
            Area("Nzanza", "-5.835000", "13.480000"),
            Area("Mvuzi", "-5.805000", "13.445000"),
        ),
        streets=(
            "avenue Kinkanda",
            "avenue du Port",
            "avenue Lumumba",
            "avenue de la Cité",
            "avenue Nzanza",
            "route de Kinshasa",
        ),
        rccm_registry="MAT",
        names="kongo",
        client_weight=8,
        lunch_break=True,
    ),
    AgencyData(
        code="KIS-MAK",
        slug="kisangani",
        name="Agence Kisangani",
        province_code="CD-TO",
        city="Kisangani",
        commune="Makiso",
        address_line="14, avenue Lumumba",
        phone="+243855550108",
        latitude="0.516000",
        longitude="25.193000",
        areas=(
            Area("Makiso", "0.516000", "25.193000", weight=2),
            Area("Tshopo", "0.535000", "25.205000"),
            Area("Mangobo", "0.525000", "25.170000"),
            Area("Kabondo", "0.495000", "25.185000"),
        ),
        streets=(
            "avenue Lumumba",
            "avenue de l'Église",
            "avenue Tshatshi",
            "avenue du 30 Juin",
            "avenue de la Tshopo",
            "avenue des Martyrs",
        ),
        rccm_registry="KIS",
        names="tshopo",
        client_weight=10,
    ),
)

# Opening hours: (weekday, opens, closes); weekday 0 is Monday (OpeningHours.Weekday).
LUNCH_BREAK_SLOTS = (("08:00", "12:00"), ("13:00", "16:00"))
_SATURDAY = (5, "08:00", "12:00")
HOURS = (*((day, "08:00", "16:00") for day in range(5)), _SATURDAY)
HOURS_WITH_LUNCH_BREAK = (
    *((day, opens, closes) for day in range(5) for opens, closes in LUNCH_BREAK_SLOTS),
    _SATURDAY,
)

FIRST_NAMES = (
    "Jean-Marie",
    "Marie-Claire",
    "Patrick",
    "Dieudonné",
    "Espérance",
    "Gloire",
    "Exaucé",
    "Merveille",
    "Fiston",
    "Grâce",
    "Blaise",
    "Chantal",
    "Divine",
    "Christian",
    "Héritier",
    "Trésor",
    "Bienvenu",
    "Plamedi",
    "Rachel",
    "Nadine",
    "Françoise",
    "Jeannette",
    "Solange",
    "Béatrice",
    "Papy",
    "Joël",
    "Josué",
    "Christelle",
    "Godefroid",
    "Célestin",
    "Alphonse",
    "Thérèse",
    "Dorcas",
    "Arsène",
    "Emmanuel",
    "Bénédicte",
    "Ruth",
    "Serge",
    "Mireille",
    "Prince",
)
# Swahili given names, common in the Kivus and Katanga.
EASTERN_FIRST_NAMES = ("Neema", "Furaha", "Zawadi", "Baraka", "Riziki", "Amani", "Imani")

REGIONAL_LAST_NAMES: dict[str, tuple[str, ...]] = {
    "kinshasa": (
        "Mukendi",
        "Kabila",
        "Tshisekedi",
        "Mbuyi",
        "Ilunga",
        "Kalala",
        "Lukusa",
        "Nzuzi",
        "Mputu",
        "Bolingo",
        "Kasongo",
        "Kabongo",
        "Mulumba",
        "Ngoy",
        "Banza",
        "Kanku",
        "Mwamba",
        "Tshibangu",
        "Masengo",
        "Lutete",
        "Makiese",
        "Mbala",
        "Bokele",
        "Mayala",
        "Matondo",
        "Ngalula",
        "Kabeya",
        "Mbombo",
        "Kapinga",
        "Tshiela",
        "Mujinga",
        "Kalonji",
        "Ntumba",
        "Mukuna",
    ),
    "katanga": (
        "Ilunga",
        "Kasongo",
        "Mwamba",
        "Banza",
        "Ngoy",
        "Kalenga",
        "Mutombo",
        "Kyungu",
        "Numbi",
        "Kabila",
        "Mumba",
        "Kalumba",
        "Kitenge",
        "Mwenze",
        "Masengo",
        "Kazadi",
        "Lumbu",
        "Mujinga",
        "Kapend",
        "Kaseya",
    ),
    "nord_kivu": (
        "Kambale",
        "Paluku",
        "Kasereka",
        "Kahindo",
        "Kavira",
        "Masika",
        "Muhindo",
        "Mumbere",
        "Katembo",
        "Mbusa",
        "Kavugho",
        "Sikuli",
        "Bahati",
        "Habimana",
        "Ndahiriwe",
    ),
    "sud_kivu": (
        "Bisimwa",
        "Murhula",
        "Cirhuza",
        "Mugisho",
        "Birindwa",
        "Baguma",
        "Balagizi",
        "Cirimwami",
        "Mushagalusa",
        "Namegabe",
        "Furaha",
        "Bahati",
        "Akonkwa",
        "Kabemba",
    ),
    "kongo": (
        "Nzuzi",
        "Nsimba",
        "Makiese",
        "Lusamba",
        "Mbemba",
        "Mpanzu",
        "Lutete",
        "Matondo",
        "Nlandu",
        "Mavungu",
        "Luzolo",
        "Ndombasi",
        "Kimpiatu",
        "Nkanu",
        "Diansangu",
    ),
    "tshopo": (
        "Bolamba",
        "Likambo",
        "Bosenge",
        "Lomboto",
        "Bokanga",
        "Osako",
        "Asumani",
        "Lokondo",
        "Bofenda",
        "Lisasi",
        "Bolingo",
        "Mokili",
        "Mputu",
    ),
}

# Mobile prefixes after +243 with rough market shares (numbers are portable: hints only).
MOBILE_PREFIXES: tuple[tuple[str, int], ...] = (
    ("81", 16),  # Vodacom
    ("82", 12),
    ("83", 6),
    ("84", 9),  # Orange
    ("85", 8),
    ("89", 6),
    ("97", 12),  # Airtel
    ("98", 8),
    ("99", 12),
    ("90", 5),  # Africell
)


@dataclass(frozen=True)
class CompanyKind:
    """A kind of organisation among the clients; ``{name}`` and ``{family}`` are filled in."""

    pattern: str
    category: SiteCategory
    site_label: str
    weight: int
    registered: bool = True  # businesses have an RCCM number; parishes, ASBL do not
    rccm_kind: str = "B"  # B: a company; A: a sole trader
    mining_region_only: bool = False
    english_speaking: bool = False


COMPANY_KINDS: tuple[CompanyKind, ...] = (
    CompanyKind("Alimentation {name}", SiteCategory.COMMERCIAL, "Magasin", weight=6),
    CompanyKind("Ets {family} et Fils", SiteCategory.COMMERCIAL, "Dépôt", 4, rccm_kind="A"),
    CompanyKind("Hôtel {name}", SiteCategory.COMMERCIAL, "Hôtel", weight=3),
    CompanyKind("Boulangerie {name}", SiteCategory.COMMERCIAL, "Boulangerie", weight=3),
    CompanyKind("Pharmacie {name}", SiteCategory.COMMERCIAL, "Officine", weight=3),
    CompanyKind("Quincaillerie {name}", SiteCategory.COMMERCIAL, "Magasin", weight=3),
    CompanyKind("Restaurant {name}", SiteCategory.COMMERCIAL, "Restaurant", weight=2),
    CompanyKind("Moulin {name}", SiteCategory.INDUSTRIAL, "Moulin à maïs", weight=2),
    CompanyKind("Menuiserie {name}", SiteCategory.INDUSTRIAL, "Atelier", weight=2),
    CompanyKind(
        "{name} Mining Supplies SARL",
        SiteCategory.INDUSTRIAL,
        "Entrepôt",
        weight=4,
        mining_region_only=True,
        english_speaking=True,
    ),
    CompanyKind("Complexe scolaire {name}", SiteCategory.PUBLIC, "École", 3, registered=False),
    CompanyKind("Centre de santé {name}", SiteCategory.PUBLIC, "Dispensaire", 1, registered=False),
    CompanyKind("Hôpital {name}", SiteCategory.PUBLIC, "Hôpital", weight=1, registered=False),
    CompanyKind("Paroisse {saint}", SiteCategory.PUBLIC, "Église", weight=2, registered=False),
)

BUSINESS_NAMES = (
    "La Grâce",
    "Bon Berger",
    "Elikya",
    "Bondeko",
    "Kimia",
    "Amani",
    "Umoja",
    "Baraka",
    "Tujenge",
    "La Référence",
    "Le Palmier",
    "Lumière",
    "Victoire",
    "Excellence",
    "Nouvelle Vision",
    "Le Bon Samaritain",
    "Mapendo",
    "Matumaini",
    "Le Fleuve",
    "Étoile du Matin",
)
SAINTS = (
    "Saint-Joseph",
    "Notre-Dame de Fatima",
    "Saint-Pierre",
    "Sainte-Anne",
    "Saint-Kizito",
    "Sainte-Thérèse",
    "Saint-Charles Lwanga",
    "Christ-Roi",
)

HOME_LABELS = ("Domicile", "Domicile", "Résidence familiale", "Parcelle familiale")
SECOND_HOME_LABELS = ("Maison en location", "Parcelle du village", "Annexe")
SMALL_BUSINESS_LABELS = (
    "Boutique",
    "Salon de coiffure",
    "Atelier de couture",
    "Dépôt de boissons",
    "Kiosque mobile money",
    "Cyber café",
)


@dataclass(frozen=True)
class ConnectionRequestData:
    """A connection request of the demo; ``outcome`` is what the agency manager decided."""

    agency_code: str
    commune: str
    street: str
    category: SiteCategory
    message: str
    first_name: str = ""
    last_name: str = ""
    middle_name: str = ""
    company_name: str = ""
    rccm: str = ""
    outcome: str = "pending"  # pending | approved | rejected
    rejection_reason: str = ""


CONNECTION_REQUESTS: tuple[ConnectionRequestData, ...] = (
    ConnectionRequestData(
        "KIN-GOM",
        "Lingwala",
        "avenue des Huileries",
        SiteCategory.RESIDENTIAL,
        "Maison neuve, nous souhaitons un compteur prépayé.",
        first_name="Divine",
        last_name="Kanku",
        middle_name="Mujinga",
    ),
    ConnectionRequestData(
        "KIN-LIM",
        "Limete",
        "10e rue",
        SiteCategory.COMMERCIAL,
        "Ouverture d'une boulangerie : il nous faut un raccordement triphasé.",
        company_name="Boulangerie Elikya",
        rccm="CD/KNM/RCCM/19-B-00412",
    ),
    ConnectionRequestData(
        "KIN-MAS",
        "Ndjili",
        "avenue de la Paix",
        SiteCategory.RESIDENTIAL,
        "Parcelle au quartier 7, à côté de l'école primaire.",
        first_name="Fiston",
        last_name="Mputu",
    ),
    ConnectionRequestData(
        "LSH-CTR",
        "Kampemba",
        "avenue Kilela Balanda",
        SiteCategory.INDUSTRIAL,
        "Entrepôt de pièces pour engins miniers, puissance estimée 60 kVA.",
        company_name="Tujenge Mining Supplies SARL",
        rccm="CD/LSH/RCCM/21-B-01877",
    ),
    ConnectionRequestData(
        "GOM-CTR",
        "Karisimbi",
        "avenue de la Paix",
        SiteCategory.RESIDENTIAL,
        "Nous avons déjà le câble jusqu'à la parcelle.",
        first_name="Neema",
        last_name="Kavira",
        middle_name="Masika",
    ),
    ConnectionRequestData(
        "KIS-MAK",
        "Tshopo",
        "avenue de la Tshopo",
        SiteCategory.PUBLIC,
        "École de 600 élèves, cours du soir prévus.",
        company_name="Complexe scolaire Bosenge",
    ),
    ConnectionRequestData(
        "KIN-GOM",
        "Gombe",
        "avenue Colonel Ebeya",
        SiteCategory.RESIDENTIAL,
        "Appartement au 2e étage, ancien compteur retiré par le bailleur.",
        first_name="Blaise",
        last_name="Tshibangu",
        middle_name="Kalonji",
        outcome="approved",
    ),
    ConnectionRequestData(
        "LSH-CTR",
        "Lubumbashi",
        "avenue Mama Yemo",
        SiteCategory.COMMERCIAL,
        "Hôtel de 24 chambres.",
        company_name="Hôtel Amani",
        rccm="CD/LSH/RCCM/16-B-00934",
        outcome="approved",
    ),
    ConnectionRequestData(
        "KIN-MAS",
        "Kimbanseke",
        "avenue Kingasani",
        SiteCategory.RESIDENTIAL,
        "Nouvelle construction au bout de l'avenue.",
        first_name="Gloire",
        last_name="Nzuzi",
        outcome="rejected",
        rejection_reason=(
            "Votre rue n'est pas encore desservie par notre réseau basse tension ; "
            "nous vous recontacterons dès l'extension du réseau."
        ),
    ),
    ConnectionRequestData(
        "BKV-IBA",
        "Bagira",
        "avenue de la Mission",
        SiteCategory.RESIDENTIAL,
        "Demande pour la maison familiale.",
        first_name="Chantal",
        last_name="Bisimwa",
        outcome="rejected",
        rejection_reason=(
            "Demande en double : un raccordement est déjà en cours pour cette parcelle."
        ),
    ),
)

# The client behind the portal account ``client.demo``.
PORTAL_USERNAME = "client.demo"
PORTAL_CLIENT = {
    "agency_code": "KIN-GOM",
    "first_name": "Espérance",
    "last_name": "Mbuyi",
    "middle_name": "Kalala",
    "phone": "+243812345678",
    "email": f"client.demo@{CLIENT_EMAIL_DOMAIN}",
    "commune": "Gombe",
    "address_line": "27, avenue de la Justice",
    "latitude": "-4.307200",
    "longitude": "15.299800",
}


# Tariffs of the demo (CDF; industry pays in USD), in force from the start of 2026, with the
# BCC rate of the day the demo is loaded. Bands: (up to kWh in the month or None, price).
TARIFFS = (
    ("RES-2026", "Résidentiel 2026", "residential", "CDF", "2500", ((50, "120"), (None, "250"))),
    ("COM-2026", "Commercial 2026", "commercial", "CDF", "10000", ((None, "350"),)),
    ("IND-2026", "Industriel 2026", "industrial", "USD", "50", ((None, "0.12"),)),
    ("PUB-2026", "Service public 2026", "public", "CDF", "5000", ((None, "250"),)),
)
CDF_PER_USD = "2850"
