"""What an uploaded file really is: its type detected from its bytes, checked against the declared one.

The client's file name and declared content type are never trusted: the stored type, the stored file's
extension and the way the file is served all follow from what the bytes are.

- Images are opened by Pillow, restricted to the formats browsers show (PNG, JPEG, GIF, WebP, AVIF,
  BMP, TIFF, ICO), and verified; width, height, format and a few cheap facts go into the metadata.
- Other binary files are recognised by their magic numbers (PDF, ZIP and the office formats built on
  it, OLE office files, gzip, common audio and video); anything else is `application/octet-stream`.
- UTF-8 text is `text/plain`, or the text type the client declared (CSV, Markdown, JSON, ...).
- Markup (HTML, SVG, XML: anything a browser could run script in) is neutralised: stored as a `file`
  of type `application/octet-stream`, so it is only ever served as a download (no stored XSS).

A declared type that contradicts the detected one (a PDF sent as `image/png`) is refused.
"""

from __future__ import annotations

import codecs
import warnings
from dataclasses import dataclass, field
from typing import IO, Any, Literal, NoReturn

from PIL import Image, UnidentifiedImageError

from server.errors import InvalidInputError

OCTET_STREAM = "application/octet-stream"
SNIFF_BYTES = 8192

# Pillow format -> (MIME type, extension). These are the only formats Pillow may parse here: fewer
# parsers, fewer surprises (EPS, for one, would start Ghostscript).
IMAGE_FORMATS: dict[str, tuple[str, str]] = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "MPO": ("image/jpeg", "jpg"),  # a JPEG with several pictures; Pillow names it apart
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
    "AVIF": ("image/avif", "avif"),
    "BMP": ("image/bmp", "bmp"),
    "TIFF": ("image/tiff", "tif"),
    "ICO": ("image/x-icon", "ico"),
}

# The Pillow plugins to try; MPO has none of its own (the JPEG plugin returns it).
_PLUGINS = [name for name in IMAGE_FORMATS if name != "MPO"]

# Zip and OLE containers hold several document formats; the declared type picks one of them.
_ZIP_FAMILY = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/epub+zip": "epub",
}
_OLE_FAMILY = {
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt",
}
_TEXT_FAMILY = {
    "text/plain": "txt",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "text/markdown": "md",
    "application/json": "json",
}
_OTHER = {
    "application/pdf": "pdf",
    "application/zip": "zip",
    "application/x-ole-storage": "ole",
    "application/gzip": "gz",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/mp4": "m4a",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    OCTET_STREAM: "bin",
}

# Every type this module can store, with the one extension its files get.
EXTENSIONS: dict[str, str] = {
    **dict(IMAGE_FORMATS.values()),
    **_ZIP_FAMILY,
    **_OLE_FAMILY,
    **_TEXT_FAMILY,
    **_OTHER,
}
MIME_TYPES: dict[str, str] = {ext: mime for mime, ext in EXTENSIONS.items()}
# Served inline (shown by the browser); every other file is served as a download.
INLINE_EXTENSIONS = frozenset(ext for _, ext in IMAGE_FORMATS.values())

_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "image/vnd.microsoft.icon": "image/x-icon",
    "audio/mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/x-flac": "audio/flac",
    "application/x-zip-compressed": "application/zip",
    "application/x-gzip": "application/gzip",
    "text/x-markdown": "text/markdown",
}
# Declared types that mean "the client does not know".
_UNKNOWN = frozenset({"", OCTET_STREAM, "binary/octet-stream", "application/unknown"})
# Declared types a browser would render as a document that can run script.
_MARKUP = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
    }
)
_MARKUP_MARKERS = (b"<svg", b"<html", b"<!doctype", b"<script", b"<?xml", b"<body", b"<iframe")


@dataclass(frozen=True)
class Detected:
    """The outcome of detection: how the file is stored and described."""

    asset_type: Literal["image", "file"]
    mime_type: str
    extension: str
    width: int | None = None
    height: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def normalize_type(declared: str | None) -> str:
    """A declared content type without parameters, lower-cased, with common aliases resolved."""
    base = (declared or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def detect(source: IO[bytes], declared: str | None) -> Detected:
    """Detect the type of `source` (seekable, read from its start) and check the declared type.

    Args:
        source: the uploaded bytes.
        declared: the content type the client sent, if any.

    Returns:
        How to store the file.

    Raises:
        InvalidInputError: the declared type contradicts the bytes, or an image is damaged or has too
            many pixels.
    """
    claimed = normalize_type(declared)
    source.seek(0)
    head = source.read(SNIFF_BYTES)
    image = _image(source, claimed)
    if image is not None:
        return image
    if claimed.startswith("image/") and claimed != "image/svg+xml":
        _mismatch(claimed, "not an image this server accepts")
    magic = _magic(head)
    if magic is not None:
        return _binary(magic, claimed)
    if _is_text(source, head):
        return _text(head, claimed)
    if claimed in EXTENSIONS and claimed not in _UNKNOWN:
        # A type we recognise by its bytes, but these bytes are not it.
        _mismatch(claimed, "unrecognised binary data")
    return Detected("file", OCTET_STREAM, "bin", metadata=_declared(claimed))


def _mismatch(claimed: str, actual: str) -> NoReturn:
    raise InvalidInputError(
        f"the file's content does not match its declared type {claimed} (it is {actual})",
        path="file",
    )


def _declared(claimed: str) -> dict[str, Any]:
    return {"declaredType": claimed} if claimed and claimed not in _UNKNOWN else {}


def _image(source: IO[bytes], claimed: str) -> Detected | None:
    source.seek(0)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its pixel limit and twice that; refuse at the limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=_PLUGINS) as image:
                image.verify()
            # verify() leaves the image unusable, so the details come from a second open.
            source.seek(0)
            with Image.open(source, formats=_PLUGINS) as image:
                details = _image_details(image)
    except UnidentifiedImageError:
        return None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInputError(
            f"the image has too many pixels (at most {Image.MAX_IMAGE_PIXELS})", path="file"
        ) from None
    except Exception as exc:
        # Pillow reports damaged data with several exception types (SyntaxError, OSError, ...).
        raise InvalidInputError(f"the image is damaged: {exc}", path="file") from None
    mime, extension = IMAGE_FORMATS[details["format"]]
    if claimed not in _UNKNOWN and claimed != mime:
        _mismatch(claimed, mime)
    width, height = details.pop("size")
    return Detected("image", mime, extension, width=width, height=height, metadata=details)


def _image_details(image: Image.Image) -> dict[str, Any]:
    frames = int(getattr(image, "n_frames", 1))
    details: dict[str, Any] = {
        "format": image.format,
        "size": image.size,
        "mode": image.mode,
        "hasAlpha": image.mode in ("RGBA", "LA", "PA", "La", "RGBa")
        or "transparency" in image.info,
        "animated": frames > 1,
        "frames": frames,
    }
    orientation = image.getexif().get(0x0112)  # EXIF Orientation: how viewers rotate the picture
    if isinstance(orientation, int) and orientation != 1:
        details["orientation"] = orientation
    return details


def _magic(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "application/zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/x-ole-storage"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand == b"M4A ":
            return "audio/mp4"
        if brand in (b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash"):
            return "video/mp4"
    return None


def _binary(detected: str, claimed: str) -> Detected:
    if detected == "application/zip" and claimed in _ZIP_FAMILY:
        return Detected("file", claimed, _ZIP_FAMILY[claimed])
    if detected == "application/x-ole-storage" and claimed in _OLE_FAMILY:
        return Detected("file", claimed, _OLE_FAMILY[claimed])
    if claimed not in _UNKNOWN and claimed != detected:
        _mismatch(claimed, detected)
    return Detected("file", detected, EXTENSIONS[detected])


def _is_text(source: IO[bytes], head: bytes) -> bool:
    if b"\x00" in head:
        return False
    decoder = codecs.getincrementaldecoder("utf-8")()
    source.seek(0)
    try:
        while chunk := source.read(64 * 1024):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _text(head: bytes, claimed: str) -> Detected:
    start = head.removeprefix(codecs.BOM_UTF8).lstrip().lower()
    markup = start.startswith(b"<") or any(marker in start for marker in _MARKUP_MARKERS)
    if markup or claimed in _MARKUP:
        # Stored so that no browser renders it: a download of unknown type.
        neutralised = claimed if claimed in _MARKUP else "text/html"
        if b"<svg" in start and claimed not in _MARKUP:
            neutralised = "image/svg+xml"
        return Detected("file", OCTET_STREAM, "bin", metadata={"neutralised": neutralised})
    if claimed in _TEXT_FAMILY:
        return Detected("file", claimed, _TEXT_FAMILY[claimed])
    if claimed in _UNKNOWN or claimed.startswith("text/"):
        return Detected("file", "text/plain", "txt", metadata=_declared(claimed))
    _mismatch(claimed, "text")
