"""joblib (scikit-learn and anything else pickled with it); the framework is named from the object."""
from .spec import Arg, Load, Save

FRAMEWORK = "joblib"
KEY = "joblib"
PATCHES = [
    Save("joblib", "dump", path=Arg(1, "filename"), obj=Arg(0, "value")),
    Load("joblib", "load", path=Arg(0, "filename")),
]
