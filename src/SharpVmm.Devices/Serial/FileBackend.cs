namespace SharpVmm.Devices.Serial;

/// <summary>Guest output appended to a file (created or truncated at start). No input.</summary>
public sealed class FileBackend : ICharBackend
{
    private readonly FileStream _file;
    private readonly object _gate = new();

    public FileBackend(string path)
    {
        try
        {
            _file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new Core.ConfigurationException($"cannot open serial output file '{path}': {ex.Message}");
        }
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        // Unbuffered on purpose: the file is a log someone tails while the guest runs, and is complete if we are killed.
        lock (_gate) _file.Write(data);
    }

    public void Start(Action<ReadOnlySpan<byte>> onInput) { }

    public void Dispose()
    {
        lock (_gate) _file.Dispose();
    }
}
