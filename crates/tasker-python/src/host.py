"""The Python half of the native module's classes: compiled into ``tasker_core._native`` by convert.rs, which
calls ``object_class`` for every object of tasker-shared-ffi's object table and ``error_class`` for every
error kind, and builds raised errors with ``exception``. Nothing here names a field or a kind."""


class Object:
    """A read-only result object: one attribute per field, equality by value, ``to_dict()`` and a repr."""

    __slots__ = ()
    #: The field names, in the table's order.
    __fields__: tuple = ()

    def __init__(self, **fields):
        missing = [f for f in self.__fields__ if f not in fields]
        unknown = sorted(set(fields).difference(self.__fields__))
        if missing or unknown:
            raise TypeError(f"{type(self).__name__}: missing fields {missing}, unknown fields {unknown}")
        for f in self.__fields__:
            object.__setattr__(self, f, fields[f])

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} objects are read-only")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} objects are read-only")

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.__fields__)

    __hash__ = None

    def __repr__(self):
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__fields__)
        return f"tasker_core.{type(self).__name__}({fields})"

    def to_dict(self):
        """Every field as plain data: nested objects become dicts too."""
        return {f: _plain(getattr(self, f)) for f in self.__fields__}


Object.__module__ = "tasker_core"


def _plain(value):
    if isinstance(value, Object):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def object_class(name, fields, doc):
    """The class of one table object: its fields are its slots."""
    return type(name, (Object,), {"__slots__": fields, "__fields__": fields, "__module__": "tasker_core", "__doc__": doc})


def error_class(name, base, code):
    """The class of one error kind; ``TimeoutError`` is also the builtin, so ``except TimeoutError`` works."""
    bases = (base, TimeoutError) if name == "TimeoutError" else (base,)
    doc = f"An error of kind `{code}` (docs/bindings.md §5)."
    return type(name, bases, {"__module__": "tasker_core", "__doc__": doc})


def exception(cls, base, message, code, details, causes):
    """An error to raise: its ``code``, ``details`` and ``causes``, with the causes chained as ``__cause__``
    (outermost first, each a ``base``) so tracebacks show them."""
    error = cls(message)
    error.code, error.details, error.causes = code, details, list(causes)
    below = None
    for cause in reversed(causes):
        link = base(cause)
        link.code, link.__cause__ = code, below
        below = link
    error.__cause__ = below
    return error
