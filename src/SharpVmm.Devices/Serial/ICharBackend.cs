namespace SharpVmm.Devices.Serial;

/// <summary>
/// Where a character device's bytes go and come from (stdio, a file, a UNIX socket).
/// Output is called on vCPU threads and must not block for long; input is pushed from the backend's own thread.
/// </summary>
public interface ICharBackend : IDisposable
{
    void Write(ReadOnlySpan<byte> data);

    /// <summary>Starts delivering input to <paramref name="onInput"/> (from a backend thread). Backends without input ignore it.</summary>
    void Start(Action<ReadOnlySpan<byte>> onInput);
}
