"""Text helpers for the packages that require common-lib."""


def greeting(name):
    """Returns the greeting a package logs at start-up."""
    return 'Hello from {}, via common-lib'.format(name)
