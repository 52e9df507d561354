"""``ncs.log``: the logging wrapper that NSO applications use (``self.log``).

``Log`` wraps a standard ``logging.Logger``. Its methods take any number of arguments and join
them with ``str()`` and no separator, as NSO's do: ``self.log.info('Value: ', 42)``. The joined
text is passed to the logger as a literal message, so a ``%`` in it is never interpreted as a
format directive. In a VM the root logger writes to the VM's log file, so these lines land there.
"""

import logging
import time

__all__ = ["Log"]


class Log:
    """A logger wrapper whose methods join their arguments with ``str()``.

    ``logobj`` is a ``logging.Logger`` (or another ``Log``); with ``add_timestamp`` each message
    is prefixed with the local time (useful when the logger writes somewhere without one).
    """

    def __init__(self, logobj, add_timestamp=False):
        if isinstance(logobj, Log):
            logobj = logobj.logger
        self.logger = logobj
        self.add_timestamp = add_timestamp

    def _text(self, args):
        text = "".join(str(a) for a in args)
        if self.add_timestamp:
            now = time.time()
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
            text = "%s.%03d %s" % (stamp, int(now * 1000) % 1000, text)
        return text

    def _log(self, level, args, exc_info=False):
        # Skip the joining work when the level is off: debug logging in hot callbacks is common.
        if self.logger.isEnabledFor(level):
            # The text is the record's message with no arguments, so `logging` never applies
            # %-formatting to it. stacklevel=3: the record describes the caller of info() etc.
            self.logger.log(level, self._text(args), exc_info=exc_info, stacklevel=3)

    def debug(self, *args):
        """Logs at DEBUG."""
        self._log(logging.DEBUG, args)

    def info(self, *args):
        """Logs at INFO."""
        self._log(logging.INFO, args)

    def warning(self, *args):
        """Logs at WARNING."""
        self._log(logging.WARNING, args)

    # NSO code sometimes uses the old name.
    warn = warning

    def error(self, *args):
        """Logs at ERROR."""
        self._log(logging.ERROR, args)

    def critical(self, *args):
        """Logs at CRITICAL."""
        self._log(logging.CRITICAL, args)

    def exception(self, *args):
        """Logs at ERROR, followed by the traceback of the exception being handled."""
        self._log(logging.ERROR, args, exc_info=True)

    def is_enabled_for(self, level):
        """Whether a message at ``level`` (a ``logging`` level number) would be written."""
        return self.logger.isEnabledFor(level)

    def __repr__(self):
        return "<ncs.log.Log %s>" % self.logger.name
