from typing import Any

from wtforms import FileField as _FileField
from wtforms.validators import DataRequired

class FileField(_FileField):
    def has_file(self) -> bool: ...

class FileRequired(DataRequired):
    def __init__(self, message: str | None = ...) -> None: ...

class FileAllowed:
    def __init__(self, upload_set: Any, message: str | None = ...) -> None: ...
    def __call__(self, form: Any, field: Any) -> None: ...
