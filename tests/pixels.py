"""Pixels the tests read: Pillow types ``getpixel`` for every mode at once (a number, a tuple or
None), so a multi-band image's pixel is read here as the tuple it is."""

from PIL import Image


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    """The channel values of a multi-band image (RGB, RGBA, ...) at ``xy``."""
    value = image.getpixel(xy)
    assert isinstance(value, tuple), f"a {image.mode} image has no multi-band pixel: {value!r}"
    return value
