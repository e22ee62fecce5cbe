namespace SharpVmm.Block;

/// <summary>
/// An image that cannot be opened, read or written as asked: malformed or corrupt metadata, an unsupported feature,
/// a missing backing file. The message names the image and says what the user can do about it.
/// </summary>
public class BlockImageException : IOException
{
    public BlockImageException(string message) : base(message) { }
    public BlockImageException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The image's metadata is inconsistent; reading on could return wrong data, so the request is refused.</summary>
public sealed class ImageCorruptException(string message) : BlockImageException(message);
