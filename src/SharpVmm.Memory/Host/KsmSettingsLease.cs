namespace SharpVmm.Memory.Host;

/// <summary>
/// Exclusive use of the host's KSM settings for a while (tests and benches that switch KSM on with a fast scan rate):
/// takes a lock file so two such programs never interleave their changes, saves every tunable, and on Dispose puts
/// each one back and releases the lock, whatever happened meanwhile.
/// </summary>
public sealed class KsmSettingsLease : IDisposable
{
    public const string LockPath = "/tmp/sharpvmm-ksm-settings.lock";

    private readonly FileStream _lock;
    private readonly IReadOnlyDictionary<string, long> _saved;
    private bool _disposed;

    private KsmSettingsLease(KsmHost host, FileStream lockFile, IReadOnlyDictionary<string, long> saved)
    {
        Host = host;
        _lock = lockFile;
        _saved = saved;
    }

    public KsmHost Host { get; }
    public IReadOnlyDictionary<string, long> Saved => _saved;

    /// <summary>Waits up to <paramref name="timeout"/> for the lock (another holder restores its settings first), then saves.</summary>
    public static KsmSettingsLease Acquire(KsmHost host, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        FileStream? f = null;
        while (f is null)
        {
            try
            {
                // FileShare.None is an exclusive flock on Unix: released by the kernel even if this process dies.
                f = new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(250);
            }
            catch (IOException e)
            {
                throw new HostMemoryException($"another program holds the KSM settings ({LockPath}) for longer than {timeout.TotalSeconds:0} s", e);
            }
        }
        try
        {
            return new KsmSettingsLease(host, f, host.SaveTunables());
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    /// <summary>Starts the daemon scanning <paramref name="pagesToScan"/> pages every <paramref name="sleepMs"/> ms.</summary>
    public void RunFast(long pagesToScan = 10000, long sleepMs = 20)
    {
        Host.Write("pages_to_scan", pagesToScan);
        Host.Write("sleep_millisecs", sleepMs);
        Host.Write("run", 1);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { Host.Restore(_saved); }
        finally { _lock.Dispose(); }
    }
}
