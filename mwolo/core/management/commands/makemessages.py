from django.core.management.commands import makemessages


class Command(makemessages.Command):
    # Without fuzzy matching, a new string never inherits a neighbour's translation
    # ("Apply for a connection" is not "Approve connection requests").
    msgmerge_options = [*makemessages.Command.msgmerge_options, "--no-fuzzy-matching"]
