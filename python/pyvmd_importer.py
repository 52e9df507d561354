"""Serves the ``ncs`` package from sources embedded in the ``pyvmd`` binary.

Run by the VM before anything else (as module ``_pyvmd_importer``). The sources come from the
native module ``_pyvmd``. An in-memory importer rather than files unpacked to a temporary
directory: nothing to clean up when a VM is killed (SIGKILL leaves no chance to), nothing another
process can tamper with, and the API always matches the binary. The finder goes first on
``sys.meta_path`` so that our ``ncs`` wins over any other ``ncs`` on ``sys.path`` (e.g. NSO's own,
which needs NSO's C extension). Tracebacks still show source lines: the loader implements
``get_source``, which ``linecache`` uses for files that are not on disk.
"""

import importlib.abc
import importlib.util
import sys

import _pyvmd


class EmbeddedLoader(importlib.abc.InspectLoader):
    """Loads modules from ``{name: (filename, source, is_package)}``."""

    def __init__(self, modules):
        self._modules = modules

    def is_package(self, fullname):
        return self._modules[fullname][2]

    def get_source(self, fullname):
        return self._modules[fullname][1]

    def get_code(self, fullname):
        filename, source, _ = self._modules[fullname]
        return compile(source, filename, "exec", dont_inherit=True)

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)


class EmbeddedFinder(importlib.abc.MetaPathFinder):
    """Finds the embedded modules."""

    def __init__(self, modules):
        self._modules = modules
        self._loader = EmbeddedLoader(modules)

    def find_spec(self, fullname, path=None, target=None):
        entry = self._modules.get(fullname)
        if entry is None:
            return None
        filename, _, is_package = entry
        spec = importlib.util.spec_from_loader(fullname, self._loader, origin=filename,
                                               is_package=is_package)
        # A location gives the modules a `__file__` (code that inspects it expects one); the
        # path does not exist, and linecache falls back on get_source().
        spec.has_location = True
        return spec


def install():
    """Puts the finder first on ``sys.meta_path``."""
    modules = {name: (filename, source, is_package)
               for name, filename, source, is_package in _pyvmd.embedded_sources()}
    sys.meta_path.insert(0, EmbeddedFinder(modules))
