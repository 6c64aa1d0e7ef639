"""joblib (scikit-learn and anything else pickled with it); the framework is named from the object.

Checked against joblib 1.x: dump(value, filename, compress=0, protocol=None) writes one file (also
when compressing) and load(filename, mmap_mode=None, ...) reads it; filename may be a path or an
open file object.
"""
from .spec import Arg, Load, Save

FRAMEWORK = "joblib"
KEY = "joblib"
PATCHES = [
    Save("joblib", "dump", path=Arg(1, "filename"), obj=Arg(0, "value")),
    Load("joblib", "load", path=Arg(0, "filename")),
]
