"""Internal: the ``input`` and ``output`` objects of action callbacks.

They behave like ``ncs.maagic`` nodes (attributes with ``-`` mapped to ``_``, ``node['yang-name']``,
lists with ``create``/``[key]``/iteration/``len``/``in``, leaf-lists as Python lists, presence
containers with ``exists``/``create``/``delete``, empty leaves as ``True``/``False``, leaves
converted by type and unset ones reading as their default or None), but hold their data
locally: the server sends the whole input with the call and takes the whole output back, so an
action costs one round trip however many parameters it has.

The schema comes with the call as a list of child descriptions
(``{"name", "kind", "type", "presence", "keys", "default", "children"}``).
"""

from . import maagic as _maagic
from . import maapi as _maapi

__all__ = ["ParamContainer", "from_json", "new"]


def _py_name(yang_name):
    return yang_name.replace("-", "_").replace(".", "_")


def _convert(desc, text):
    return _maagic._to_python(desc.get("type"), text)


class ParamContainer:
    """A container of parameters (the input or output itself, a container, a list entry)."""

    __slots__ = ("_children", "_values", "_by_py", "_path", "_present")

    def __init__(self, children, path, values=None, present=True):
        object.__setattr__(self, "_children", children)
        object.__setattr__(self, "_values", {} if values is None else values)
        object.__setattr__(self, "_by_py", {_py_name(c["name"]): c for c in children})
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_present", present)

    def _desc(self, py_name):
        desc = self._by_py.get(py_name)
        if desc is None:
            desc = next((c for c in self._children if c["name"] == py_name), None)
        if desc is None:
            raise AttributeError("%s has no parameter %r; it has %s"
                                 % (self._path or "/", py_name,
                                    ", ".join(sorted(self._by_py)) or "none"))
        return desc

    def _get(self, desc):
        name = desc["name"]
        kind = desc["kind"]
        values = self._values
        if kind == "leaf":
            if desc.get("type") == "empty":
                return bool(values.get(name))
            if name in values:
                return values[name]
            default = desc.get("default")
            return None if default is None else _convert(desc, default)
        if kind == "leaf-list":
            return values.setdefault(name, [])
        if kind == "list":
            entries = values.setdefault(name, [])
            return ParamList(desc, entries, "%s/%s" % (self._path, name))
        # A container: created on first use (a presence container only by create()).
        child = values.get(name)
        if child is None:
            child = ParamContainer(desc["children"], "%s/%s" % (self._path, name),
                                   present=not desc.get("presence"))
            values[name] = child
        return child

    def _set(self, desc, value):
        name = desc["name"]
        kind = desc["kind"]
        if kind == "leaf":
            if value is None or (desc.get("type") == "empty" and value is False):
                self._values.pop(name, None)
            else:
                self._values[name] = value
        elif kind == "leaf-list":
            self._values[name] = list(value)
        else:
            raise _maagic.MaagicError("cannot assign to %s %s/%s"
                                      % (kind, self._path, name))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._get(self._desc(name))

    def __setattr__(self, name, value):
        self._set(self._desc(name), value)

    def __delattr__(self, name):
        self._values.pop(self._desc(name)["name"], None)

    def __getitem__(self, name):
        return self._get(self._desc(name.split(":")[-1]))

    def __setitem__(self, name, value):
        self._set(self._desc(name.split(":")[-1]), value)

    def __dir__(self):
        return sorted(self._by_py)

    def __iter__(self):
        return iter(self._by_py)

    def __repr__(self):
        return "<ParamContainer %s>" % (self._path or "/")

    # Presence containers, as ncs.maagic.PresenceContainer.
    def exists(self):
        """True when the (presence) container is present."""
        return self._present

    def create(self):
        """Makes a presence container present."""
        object.__setattr__(self, "_present", True)
        return self

    def delete(self):
        """Makes a presence container absent, dropping what it held."""
        object.__setattr__(self, "_present", False)
        self._values.clear()

    def __bool__(self):
        return self._present

    def _to_json(self):
        out = {}
        for desc in self._children:
            name = desc["name"]
            if name not in self._values:
                continue
            value = self._values[name]
            kind = desc["kind"]
            if kind == "leaf":
                out[name] = True if desc.get("type") == "empty" else _maapi._to_text(value)
            elif kind == "leaf-list":
                if value:
                    out[name] = [_maapi._to_text(v) for v in value]
            elif kind == "list":
                if value:
                    out[name] = [entry._to_json() for entry in value]
            elif value._present:
                out[name] = value._to_json()
        return out


class ParamList:
    """A list of parameters: entries are :class:`ParamContainer`\\ s."""

    __slots__ = ("_desc", "_entries", "_path")

    def __init__(self, desc, entries, path):
        self._desc = desc
        self._entries = entries
        self._path = path

    def _key_of(self, entry):
        return tuple(str(_maapi._to_text(entry._values.get(k))) for k in self._desc["keys"])

    def _wanted(self, keys):
        if not isinstance(keys, tuple):
            keys = (keys,)
        if len(keys) != len(self._desc["keys"]):
            raise _maagic.MaagicError("%s has the keys %s"
                                      % (self._path, ", ".join(self._desc["keys"])))
        return tuple(str(_maapi._to_text(k)) for k in keys)

    def create(self, *keys):
        """Adds an entry with these key values (or returns the existing one)."""
        wanted = self._wanted(keys)
        for entry in self._entries:
            if self._key_of(entry) == wanted:
                return entry
        entry = ParamContainer(self._desc["children"], "%s{%s}" % (self._path, " ".join(wanted)))
        for key, value in zip(self._desc["keys"], keys):
            child = next(c for c in self._desc["children"] if c["name"] == key)
            entry._values[key] = _convert(child, _maapi._to_text(value))
        self._entries.append(entry)
        return entry

    def __getitem__(self, keys):
        wanted = self._wanted(keys)
        for entry in self._entries:
            if self._key_of(entry) == wanted:
                return entry
        raise KeyError(keys)

    def __delitem__(self, keys):
        wanted = self._wanted(keys)
        self._entries[:] = [e for e in self._entries if self._key_of(e) != wanted]

    def delete(self):
        """Removes every entry."""
        self._entries.clear()

    def __contains__(self, keys):
        try:
            self[keys]
        except KeyError:
            return False
        return True

    def __iter__(self):
        return iter(list(self._entries))

    def __len__(self):
        return len(self._entries)

    def __repr__(self):
        return "<ParamList %s (%d entries)>" % (self._path, len(self._entries))


def _fill(container, data):
    """Loads JSON data from the server (see ``runtime::actions``) into ``container``."""
    for desc in container._children:
        name = desc["name"]
        if name not in data:
            continue
        value = data[name]
        kind = desc["kind"]
        if kind == "leaf":
            container._values[name] = True if value is True else _convert(desc, value)
        elif kind == "leaf-list":
            container._values[name] = [_convert(desc, v) for v in value]
        elif kind == "list":
            entries = container._values.setdefault(name, [])
            for item in value:
                entry = ParamContainer(desc["children"], "%s/%s" % (container._path, name))
                _fill(entry, item)
                entries.append(entry)
        else:
            child = ParamContainer(desc["children"], "%s/%s" % (container._path, name))
            _fill(child, value)
            container._values[name] = child


def from_json(children, data, path):
    """The input object: ``children`` describes it, ``data`` holds what the client sent."""
    container = ParamContainer(children, path)
    _fill(container, data or {})
    return container


def new(children, path):
    """An empty output object."""
    return ParamContainer(children, path)
