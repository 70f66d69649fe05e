namespace SlidePlugin.Engine.Encoders;

/// <summary>An encoder that cannot be loaded or run as asked: its card, its model, or the device; the message says which.</summary>
public sealed class EncoderException : Exception
{
    /// <summary>Creates the exception.</summary>
    public EncoderException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public EncoderException() { }

    /// <summary>Creates the exception.</summary>
    public EncoderException(string message, Exception innerException) : base(message, innerException) { }
}
