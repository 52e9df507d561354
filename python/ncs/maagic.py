"""``ncs.maagic``: the data of a transaction as a tree of Python objects.

Written from NSO's documented behaviour (not copied from NSO)::

    root = ncs.maagic.get_root(t)
    root.ncs__python_vm.logging.level = 'level-debug'
    dev = root.ncs__devices.device.create('ce0')
    for d in root.ncs__devices.device:
        print(d.name, d.address)

A node is a keypath plus a backend (an ``ncs.maapi.Transaction``); it holds no data, so every
read and write is a request to the server at the time it is made. What a node is (container,
list, leaf, ...) comes from the schema, which the server describes on request
(``{"op": "schema"}``); the descriptions are cached per schema path, for the VM's life.

Names: a YANG name becomes a Python attribute with ``-`` (and ``.``) mapped to ``_``;
``prefix__name`` picks the child of the module with that prefix, which the top level (several
modules) and a name that two modules add to one node need. A name that is not an identifier, or
that a method hides (``create``, ``delete``, ...), is reached with ``node['yang-name']`` (or
``node['prefix:yang-name']``). Reading a leaf converts its value by type: integers → ``int``,
boolean → ``bool``, decimal64 → ``float``, empty → ``True``/``False`` (exists or not),
everything else → ``str``; a leaf that is not set reads as its default, else ``None``.
"""

import keyword
import threading

import _ncs
from _ncs import error as _error

from . import maapi as _maapi

__all__ = [
    "MaagicError",
    "BackendError",
    "Node",
    "Root",
    "Container",
    "PresenceContainer",
    "List",
    "ListElement",
    "LeafList",
    "Action",
    "Rpc",
    "Notification",
    "NonContainer",
    "get_root",
    "get_node",
    "get_trans",
    "get_maapi",
    "cd",
    "as_pyval",
]


class MaagicError(Exception):
    """A misuse of the maagic tree (assigning to a container, calling an action, ...)."""


class BackendError(MaagicError):
    """A node without a usable backend (no transaction, or several to choose from)."""


# ---------------------------------------------------------------------------------------------
# Schema descriptions


_INT_TYPES = frozenset(
    ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"))


def _to_python(type_name, text):
    """A value string converted by its YANG base type (see the module notes)."""
    text = str(text)
    try:
        if type_name in _INT_TYPES:
            return int(text)
        if type_name == "boolean":
            return text == "true"
        if type_name == "decimal64":
            return float(text)
    except ValueError:
        # The server sends canonical strings; should one not parse, the string is more use
        # than an exception in the middle of a service.
        return text
    return text


def _py_name(yang_name):
    return yang_name.replace("-", "_").replace(".", "_")


class _Schema:
    """One schema node as the server describes it, with its children's Python names."""

    __slots__ = ("kind", "name", "module", "prefix", "presence", "config", "keys", "type",
                 "default", "children", "_by_name", "_display")

    def __init__(self, desc):
        self.kind = desc.get("kind")
        self.name = desc.get("name")
        self.module = desc.get("module")
        self.prefix = desc.get("prefix")
        self.presence = bool(desc.get("presence"))
        self.config = desc.get("config", True)
        self.keys = list(desc.get("keys") or ())
        self.type = desc.get("type")
        self.default = desc.get("default")
        self.children = list(desc.get("children") or ())
        # Python name → child description, or None when two children claim the unprefixed
        # name (then only `prefix__name` reaches them).
        by_name = {}
        for child in self.children:
            plain = _py_name(child["name"])
            by_name[plain] = None if plain in by_name else child
            if keyword.iskeyword(plain):
                by_name.setdefault(plain + "_", child)
            for qualifier in {child.get("prefix"), child.get("module")} - {None}:
                by_name[_py_name(qualifier) + "__" + plain] = child
        self._by_name = by_name
        self._display = sorted(
            (plain + "_" if keyword.iskeyword(plain) else plain) if by_name.get(plain) is child
            else "%s__%s" % (_py_name(child.get("prefix") or child.get("module")), plain)
            for child in self.children
            for plain in (_py_name(child["name"]),))

    def child(self, py_name):
        """The child description for a Python attribute name; KeyError if none, MaagicError if
        the unprefixed name is ambiguous."""
        child = self._by_name[py_name]
        if child is None:
            raise MaagicError("%r names several children; write it as prefix__%s"
                              % (py_name, py_name))
        return child

    def child_by_yang(self, name, prefix=None):
        """The child with YANG name ``name`` (of the module whose prefix or name is ``prefix``,
        if given); KeyError if none."""
        matches = [c for c in self.children
                   if c["name"] == name
                   and (prefix is None or prefix in (c.get("prefix"), c.get("module")))]
        if len(matches) > 1:
            # Unprefixed and several modules: the parent's own module wins, as in a keypath.
            own = [c for c in matches if c.get("module") == self.module]
            if len(own) == 1:
                return own[0]
            raise MaagicError("%r names several children; give its prefix" % name)
        if not matches:
            raise KeyError(name)
        return matches[0]

    def python_names(self):
        """The names to list in ``dir()``: unprefixed unless that is ambiguous."""
        return self._display


_schemas = {}  # schema path (keypath without keys) → _Schema
_schemas_lock = threading.Lock()


def _schema_path(path):
    """``path`` without its keys and indexes: the schema node's path, the cache key."""
    names = []
    for segment in _ncs._split_keypath(path):
        cut = min((i for i in (segment.find("{"), segment.find("[")) if i >= 0),
                  default=len(segment))
        names.append(segment[:cut])
    return "/" + "/".join(names)


def _schema(path):
    """The schema description of the node at keypath ``path`` (cached)."""
    key = _schema_path(path)
    with _schemas_lock:
        schema = _schemas.get(key)
    if schema is None:
        # Outside the lock: a request may take a while, and two threads asking for the same
        # node at once only cost one extra request.
        schema = _Schema(_ncs._request("schema", path=path))
        with _schemas_lock:
            schema = _schemas.setdefault(key, schema)
    return schema


# ---------------------------------------------------------------------------------------------
# Nodes


def _key_text(value):
    """A key value as a string, as it is written to a keypath."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _maapi._to_text(value)


class Node:
    """Base of all nodes: ``_path`` (the keypath), ``_name`` (the YANG name), ``_parent``,
    ``_backend`` (the transaction, or None) and ``_schema`` (fetched when first needed)."""

    __slots__ = ("_backend", "_path", "_name", "_parent", "_schema_node")

    def __init__(self, backend, path, name, parent, schema=None):
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_parent", parent)
        object.__setattr__(self, "_schema_node", schema)

    @property
    def _schema(self):
        schema = self._schema_node
        if schema is None:
            schema = _schema(self._path)
            object.__setattr__(self, "_schema_node", schema)
        return schema

    def _trans(self):
        """The backend transaction; BackendError when the tree has none."""
        backend = self._backend
        if backend is None:
            raise BackendError("this maagic tree has no backend (get_root was given none)")
        return backend

    def __setattr__(self, name, value):
        # Only internal attributes, and __slots__ leaves no room for typos among those.
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            raise AttributeError("%s has no attribute %r" % (self._describe(), name))

    def _describe(self):
        return "%s %s" % (type(self).__name__, self._path)

    def __repr__(self):
        return "<ncs.maagic.%s %s>" % (type(self).__name__, self._path)


class _Parent(Node):
    """A node with children reached as attributes: the root, containers and list entries."""

    __slots__ = ()

    def _child_path(self, child):
        """The keypath of ``child`` (a child description): prefixed when its module differs
        from this node's, and always for a top-level node."""
        own = self._schema.module
        name = child["name"]
        if self._schema.kind == "root" or child.get("module") != own:
            name = "%s:%s" % (child.get("prefix") or child.get("module"), name)
        base = self._path.rstrip("/")
        return base + "/" + name

    def _lookup(self, py_name):
        try:
            return self._schema.child(py_name)
        except KeyError:
            raise AttributeError("%s has no child %r" % (self._describe(), py_name)) from None

    def _child_node(self, child):
        """The node for a child that is itself a node (not a leaf)."""
        path = self._child_path(child)
        kind = child.get("kind")
        backend = self._backend
        if kind == "container":
            schema = _schema(path)
            cls = PresenceContainer if schema.presence else Container
            return cls(backend, path, child["name"], self, schema)
        cls = _NODE_CLASSES.get(kind, NonContainer)
        return cls(backend, path, child["name"], self)

    def _get_child(self, child):
        kind = child.get("kind")
        if kind == "leaf":
            return _read_leaf(self._trans(), self._child_path(child), child)
        return self._child_node(child)

    @property
    def _children(self):
        """NSO's ``node._children``: the child nodes, for code that walks a subtree generically
        (``get_children()``, iteration, ``len``; leaves are :class:`NonContainer` nodes whose
        value is read with ``_read()``)."""
        return _Children(self)

    def _set_child(self, child, value):
        kind = child.get("kind")
        path = self._child_path(child)
        if kind == "leaf":
            trans = self._trans()
            if value is None:
                trans.safe_delete(path)
            elif _leaf_type(child, path) == "empty":
                if value:
                    trans.safe_create(path)
                else:
                    trans.safe_delete(path)
            else:
                trans.set_elem(value, path)
        elif kind == "leaf-list":
            trans = self._trans()
            if value is None:
                trans.safe_delete(path)
            else:
                LeafList(trans, path, child["name"], self).set_value(value)
        else:
            raise MaagicError("cannot assign to %s %s: only leaves and leaf-lists take values"
                              % (kind, path))

    def _del_child(self, child):
        kind = child.get("kind")
        path = self._child_path(child)
        if kind in ("leaf", "leaf-list"):
            self._trans().safe_delete(path)
        elif kind == "container" and _schema(path).presence:
            self._trans().safe_delete(path)
        else:
            raise MaagicError("cannot delete %s %s with del" % (kind, path))

    def __getattr__(self, name):
        # Only called when normal lookup fails: methods and internal slots come first.
        if name.startswith("_"):
            raise AttributeError(name)
        return self._get_child(self._lookup(name))

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self._set_child(self._lookup(name), value)

    def __delattr__(self, name):
        if name.startswith("_"):
            object.__delattr__(self, name)
        else:
            self._del_child(self._lookup(name))

    # Not iterable: without this, Python would iterate with __getitem__(0), (1), ...
    __iter__ = None

    def _yang_child(self, name):
        if not isinstance(name, str):
            raise TypeError("children are named by strings, not %r" % (name,))
        prefix, colon, local = name.partition(":")
        if not colon:
            prefix, local = None, name
        try:
            return self._schema.child_by_yang(local, prefix)
        except KeyError:
            raise KeyError("%s has no child %r" % (self._describe(), name)) from None

    def __getitem__(self, name):
        """The child with YANG name ``name`` (``'prefix:name'`` to pick a module)."""
        return self._get_child(self._yang_child(name))

    def __setitem__(self, name, value):
        self._set_child(self._yang_child(name), value)

    def __delitem__(self, name):
        self._del_child(self._yang_child(name))

    def __dir__(self):
        methods = {n for n in dir(type(self)) if not n.startswith("_")}
        return sorted(methods | set(self._schema.python_names()))


class _Children:
    """The children of a node (see ``_Parent._children``)."""

    __slots__ = ("_node",)

    def __init__(self, node):
        self._node = node

    def get_children(self):
        """Every data child, in schema order: containers, lists and leaf-lists as their nodes,
        leaves as :class:`NonContainer` nodes."""
        node = self._node
        out = []
        for child in node._schema.children:
            kind = child.get("kind")
            if kind not in ("leaf", "leaf-list", "container", "list"):
                continue
            if kind == "leaf":
                out.append(NonContainer(node._backend, node._child_path(child), child["name"],
                                        node))
            else:
                out.append(node._child_node(child))
        return out

    def __iter__(self):
        return iter(self.get_children())

    def __len__(self):
        return len(self.get_children())


class Root(_Parent):
    """The root of the data tree: its children are the modules' top-level nodes."""

    __slots__ = ()

    def __init__(self, backend=None):
        super().__init__(backend, "/", None, None)


class Container(_Parent):
    """A container (without presence): always there, so there is nothing to create."""

    __slots__ = ()


class PresenceContainer(Container):
    """A presence container: it exists or not, whatever its children."""

    __slots__ = ()

    def exists(self):
        """Whether the container exists."""
        return self._trans().exists(self._path)

    def create(self):
        """Creates the container (no error if it exists) and returns it."""
        self._trans().safe_create(self._path)
        return self

    def delete(self):
        """Deletes the container and everything in it (no error if it does not exist)."""
        self._trans().safe_delete(self._path)


class ListElement(Container):
    """One entry of a list: a container whose key leaves are its keys. ``_keys`` holds the
    key values as written in its keypath (strings)."""

    __slots__ = ("_keys",)

    def __init__(self, backend, path, name, parent, keys, schema=None):
        super().__init__(backend, path, name, parent, schema)
        object.__setattr__(self, "_keys", tuple(keys))

    def delete(self):
        """Deletes this entry."""
        self._trans().safe_delete(self._path)


class List(Node):
    """A list: entries by key (``lst['k']``, ``lst['a', 'b']``), iteration in order, ``len``,
    ``in``, ``create(*keys)``, ``del lst[keys]``, ``delete()``, ``keys()``."""

    __slots__ = ()

    def _key_values(self, keys):
        """The key values of ``keys`` (as given to ``[]`` or ``create``) as strings."""
        if isinstance(keys, tuple):
            values = list(keys)
        elif isinstance(keys, list):
            values = list(keys)
        else:
            values = [keys]
        names = self._schema.keys
        if len(values) == 1 and len(names) > 1 and isinstance(values[0], str):
            # NSO also takes all the keys in one keypath string: '{a b}'.
            text = values[0].strip()
            if text.startswith("{") and text.endswith("}"):
                values = _ncs._parse_keys(text[1:-1])
        if not names:
            raise MaagicError("list %s has no keys: its entries cannot be named" % self._path)
        if len(values) != len(names):
            raise MaagicError("list %s has %d key(s) (%s), %d given"
                              % (self._path, len(names), ", ".join(names), len(values)))
        return [_key_text(v) for v in values]

    def _element(self, values):
        path = self._path + _ncs._format_keys(values)
        return ListElement(self._backend, path, self._name, self, values, self._schema)

    def __getitem__(self, keys):
        """The entry with these keys; KeyError if there is none."""
        values = self._key_values(keys)
        element = self._element(values)
        if not self._trans().exists(element._path):
            raise KeyError(keys)
        return element

    def __delitem__(self, keys):
        values = self._key_values(keys)
        try:
            self._trans().delete(self._path + _ncs._format_keys(values))
        except _error.Error as exc:
            if exc.confd_errno == _ncs.ERR_NOEXISTS:
                raise KeyError(keys) from None
            raise

    def __contains__(self, keys):
        values = self._key_values(keys)
        return self._trans().exists(self._path + _ncs._format_keys(values))

    def __len__(self):
        return self._trans().num_instances(self._path)

    def __bool__(self):
        # Without this, Python would call __len__: a request, and an empty list is still a node.
        return True

    def __iter__(self):
        for values in self._trans()._keys(self._path):
            yield self._element(values)

    def create(self, *keys):
        """The entry with these keys, created if missing (no error if it exists)."""
        if len(keys) == 1:
            keys = keys[0]  # create('k'), or create(('a', 'b')) as for []
        values = self._key_values(keys)
        element = self._element(values)
        self._trans().safe_create(element._path)
        return element

    def delete(self):
        """Deletes every entry."""
        trans = self._trans()
        for values in trans._keys(self._path):
            trans.safe_delete(self._path + _ncs._format_keys(values))

    def keys(self):
        """The keys of the entries, in order: tuples of Python values (converted by the key
        leaves' types)."""
        types = [_schema(self._path + "/" + name).type for name in self._schema.keys]
        return [tuple(_to_python(t, v) for t, v in zip(types, values))
                for values in self._trans()._keys(self._path)]


class LeafList(Node):
    """A leaf-list: iteration over its Python values, ``len``, ``in``, ``create(v)``,
    ``remove(v)``, ``delete()``, ``as_list()``, ``set_value(values)``."""

    __slots__ = ()

    def _type(self):
        return self._schema.type

    def as_list(self):
        """The values, converted by type, in order."""
        try:
            values = self._trans().get_elem(self._path)
        except _error.Error as exc:
            if exc.confd_errno == _ncs.ERR_NOEXISTS:
                return []
            raise
        if not isinstance(values, list):
            values = [values]
        type_name = self._type()
        return [_to_python(type_name, v) for v in values]

    def __iter__(self):
        return iter(self.as_list())

    def __len__(self):
        return len(self.as_list())

    def __bool__(self):
        return True

    def __contains__(self, value):
        return self._trans().exists(self._entry_path(value))

    def _entry_path(self, value):
        return self._path + "{%s}" % _ncs._quote_key(_key_text(value))

    def create(self, value):
        """Adds ``value`` (no error if it is there)."""
        self._trans().safe_create(self._entry_path(value))

    def remove(self, value):
        """Removes ``value``; ValueError if it is not there (as ``list.remove``)."""
        try:
            self._trans().delete(self._entry_path(value))
        except _error.Error as exc:
            if exc.confd_errno == _ncs.ERR_NOEXISTS:
                raise ValueError("%r is not in %s" % (value, self._path)) from None
            raise

    def delete(self):
        """Removes every value."""
        self._trans().safe_delete(self._path)

    def set_value(self, values):
        """Replaces the values with ``values`` (any iterable; another LeafList too)."""
        if isinstance(values, LeafList):
            values = values.as_list()
        elif isinstance(values, (str, bytes, _ncs.Value)):
            values = [values]  # one value, not a sequence of characters
        values = list(values)
        if values:
            self._trans().set_elem(values, self._path)
        else:
            self._trans().safe_delete(self._path)


class NonContainer(Node):
    """A leaf as a node (``_children``), or a node that maagic offers no operations on
    (anydata, and kinds it does not know). ``_read()`` reads a leaf's value."""

    __slots__ = ()

    def _read(self):
        """The leaf's Python value (its default, or None, when it is not set)."""
        return _read_leaf(self._trans(), self._path)


class Action(Node):
    """An action. Not callable through maagic in pyvmd yet."""

    __slots__ = ()

    def __call__(self, *args, **kwds):
        raise MaagicError("actions are not callable through maagic yet (%s)" % self._path)

    def get_input(self):
        """Not available yet: raises MaagicError."""
        raise MaagicError("actions are not callable through maagic yet (%s)" % self._path)


class Rpc(Action):
    """An RPC. Not callable through maagic in pyvmd yet."""

    __slots__ = ()


class Notification(Node):
    """A notification definition: nothing to read or write."""

    __slots__ = ()


_NODE_CLASSES = {
    "list": List,
    "leaf-list": LeafList,
    "action": Action,
    "rpc": Rpc,
    "notification": Notification,
}


def _leaf_type(child, path):
    """The type of a leaf: from its description in its parent's, or its own."""
    if "type" in child:
        return child["type"]
    return _schema(path).type


def _read_leaf(trans, path, child=None):
    """The Python value of the leaf at ``path``: its default (or None) when it is not set.
    ``child`` is the leaf's description in its parent's, when known (it saves a lookup)."""
    if child is not None and "type" in child:
        type_name, default = child["type"], child.get("default")
    else:
        schema = _schema(path)
        type_name, default = schema.type, schema.default
    if type_name == "empty":
        return trans.exists(path)
    try:
        value = trans.get_elem(path)
    except _error.Error as exc:
        if exc.confd_errno != _ncs.ERR_NOEXISTS:
            raise
        if default is None:
            return None
        return _to_python(type_name, default)
    return _to_python(type_name, value)


# ---------------------------------------------------------------------------------------------
# Functions


def _backend_of(backend):
    """The transaction behind ``backend``: a Transaction, a Maapi with exactly one open
    transaction, a node, or None (a tree without data)."""
    if backend is None or isinstance(backend, _maapi.Transaction):
        return backend
    if isinstance(backend, Node):
        return backend._backend
    if isinstance(backend, _maapi.Maapi):
        transactions = backend._open_transactions()
        if len(transactions) != 1:
            raise BackendError("the Maapi has %d open transactions: get_root needs exactly one "
                               "(or pass the transaction)" % len(transactions))
        return transactions[0]
    raise BackendError("not a maagic backend: %r (pass an ncs.maapi.Transaction)" % (backend,))


def get_root(backend=None, shared=True):
    """The root node of ``backend``'s data (a Transaction, or a Maapi with one open
    transaction). Without a backend, the tree only describes the schema. ``shared`` is
    accepted for NSO compatibility."""
    return Root(_backend_of(backend))


def _walk(node, path):
    """The node or leaf value at ``path``, relative to ``node`` unless absolute."""
    if path.startswith("/"):
        node = Root(node._backend)
    for segment in _ncs._split_keypath(path):
        if segment == ".":
            continue
        if segment == "..":
            parent = node._parent
            if isinstance(parent, List):  # a list entry's parent is its list's parent
                parent = parent._parent
            node = parent if parent is not None else node
            continue
        if not isinstance(node, _Parent):
            raise MaagicError("%s has no children (in %r)" % (node._path, path))
        prefix, name, keys, index = _ncs._parse_segment(segment)
        try:
            child = node._schema.child_by_yang(name, prefix)
        except KeyError:
            raise MaagicError("%s has no child %r (in %r)" % (node._path, name, path)) from None
        kind = child.get("kind")
        if keys is None and index is None:
            node = node._get_child(child)
            continue
        if kind == "list":
            lst = node._child_node(child)
            if keys is not None:
                node = lst[tuple(keys)]
            else:
                all_keys = lst._trans()._keys(lst._path)
                if not 0 <= index < len(all_keys):
                    raise KeyError(segment)
                node = lst._element(all_keys[index])
        elif kind == "leaf-list" and keys is not None and len(keys) == 1:
            entries = node._child_node(child)
            if keys[0] not in [_key_text(v) for v in entries.as_list()]:
                raise KeyError(segment)
            node = _to_python(entries._type(), keys[0])
        else:
            raise MaagicError("%r: only lists take keys or an index (in %r)" % (segment, path))
    return node


def get_node(backend, path, shared=True):
    """The node at keypath ``path`` of ``backend``'s data (for a leaf, its value). A list entry
    that does not exist raises KeyError."""
    return _walk(Root(_backend_of(backend)), path)


def cd(node, path):
    """The node at ``path``, relative to ``node`` (``..`` goes up) unless absolute."""
    return _walk(node, path)


def get_trans(node):
    """The transaction behind ``node``."""
    backend = node._backend
    if not isinstance(backend, _maapi.Transaction):
        raise BackendError("%r has no transaction" % (node,))
    return backend


def get_maapi(node):
    """The Maapi of the transaction behind ``node``."""
    return get_trans(node).maapi


def as_pyval(node):
    """The data under ``node`` as plain Python values: a container as a dict (by Python
    name; leaves that are not set are left out), a list as a list of such dicts, a leaf-list as
    a list. Anything else is returned as is."""
    if isinstance(node, LeafList):
        return node.as_list()
    if isinstance(node, List):
        return [as_pyval(element) for element in node]
    if not isinstance(node, _Parent):
        return node
    if isinstance(node, PresenceContainer) and not node.exists():
        return {}
    schema = node._schema
    result = {}
    for child in schema.children:
        kind = child.get("kind")
        if kind not in ("leaf", "leaf-list", "container", "list"):
            continue
        plain = _py_name(child["name"])
        name = plain
        try:
            schema.child(plain)
        except MaagicError:
            name = _py_name(child.get("prefix") or child.get("module")) + "__" + plain
        value = node._get_child(child)
        if isinstance(value, PresenceContainer) and not value.exists():
            continue
        value = as_pyval(value)
        if value is None or value is False and kind == "leaf" and \
                _schema(node._child_path(child)).type == "empty":
            continue
        if isinstance(value, (dict, list)) and not value:
            continue
        result[name] = value
    return result
