"""The one exception of the insights command."""


class InsightsError(Exception):
    """Bad input (a missing report.json, an empty gradebook, a malformed
    roster): the command prints its message as one line and exits with 2."""
