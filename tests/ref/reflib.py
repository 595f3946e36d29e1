"""Shared helpers of the reference scripts in tests/ref (imported by them; the scripts run as
/usr/bin/python3 tests/ref/<name>.py, so this folder is on sys.path)."""


# A Python value as a Lua table constructor, for the cases.lua files the Lua tests load.
def lua(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join("%s = %s" % (k, lua(x)) for k, x in sorted(v.items())) + "}"
    raise TypeError(v)

