namespace SlidePlugin.Engine.Slides;

/// <summary>What went wrong with a slide, so that a service can pick the right status.</summary>
public enum SlideErrorKind
{
    /// <summary>The file does not exist.</summary>
    NotFound,

    /// <summary>The file exists but OpenSlide cannot open it (unknown format, unsupported compression).</summary>
    Unsupported,

    /// <summary>OpenSlide opened the slide but a read failed; the error has latched on the handle.</summary>
    ReadFailed,

    /// <summary>The request does not fit the slide (negative or too large a size, unknown associated image, no resolution).</summary>
    InvalidRequest,

    /// <summary>An index past the end: a level, or a Deep Zoom level or tile address, that does not exist.</summary>
    OutOfRange,

    /// <summary>A valid request for more pixels than the call serves at once (ask for a smaller region).</summary>
    TooLarge,
}

/// <summary>A slide could not be opened or read. The message quotes OpenSlide's reason where there is one.</summary>
public sealed class SlideException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SlideException(SlideErrorKind kind, string message) : base(message) => Kind = kind;

    /// <summary>Creates the exception.</summary>
    public SlideException() : base("Slide error.") { }

    /// <summary>Creates the exception.</summary>
    public SlideException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public SlideException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>What kind of failure this is.</summary>
    public SlideErrorKind Kind { get; } = SlideErrorKind.ReadFailed;
}
