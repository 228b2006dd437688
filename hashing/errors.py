"""Typed errors for media that cannot be hashed.

Every error carries a stable ``code`` (for APIs and logs) and a message, ``str(exc)``, written for the
person who uploaded the file: it says what is wrong and what they can do about it. Messages never
contain file-system paths or library internals.
"""


class MediaError(Exception):
    """Media that cannot be processed. str(exc) is a plain-language message a person can act on."""

    code: str = "unprocessable"


class EmptyMedia(MediaError):
    """The upload has zero bytes."""

    code = "empty"


class UnsupportedMedia(MediaError):
    """Not an image we can read: text, archives, SVG, HTML, video, HEIC, ..."""

    code = "unsupported"


class CorruptMedia(MediaError):
    """An image in a supported format whose data is truncated or damaged."""

    code = "corrupt"


class MediaTooLarge(MediaError):
    """Over the byte or pixel limit; this is also how decompression bombs are refused."""

    code = "too_large"


class UnreadableMedia(MediaError):
    """The file could not be read from storage (missing, permissions, I/O error).

    Unlike the other errors this is not the uploader's fault; it usually needs an operator.
    """

    code = "unreadable"


class VideoTooLong(MediaTooLarge):
    """A video over the duration or decoded-frame limit (a "frame bomb" among them)."""

    code = "too_long"


class TooManyFrames(MediaTooLarge):
    """An animated image with more frames than we decode (a "frame bomb" among them)."""

    code = "too_many_frames"
