using System.Runtime.InteropServices;

namespace SharpVmm.Emulator.Jit;

/// <summary>How generated code reaches executable memory.</summary>
public enum CodeBufferKind
{
    /// <summary>No executable memory could be had: the interpreter runs everything.</summary>
    None,
    /// <summary>One anonymous read-write-execute mapping.</summary>
    Rwx,
    /// <summary>A memfd mapped twice, writable at one address and executable at another (for hosts that refuse RWX).</summary>
    DoubleMapped,
}

/// <summary>
/// Executable memory for one VM's translated blocks: reserved once (the kernel commits pages as they are first
/// written), bump-allocated, never freed piecemeal. Invalidated code stays where it is until <see cref="Reset"/>
/// recycles the whole buffer (which the caller does only once no vCPU can be running old code).
/// </summary>
internal sealed unsafe class CodeBuffer : IDisposable
{
    private readonly object _lock = new();
    private nint _write, _exec;
    private readonly nuint _size;
    private int _fd = -1;
    private nuint _used;

    /// <summary>Allocation generation: bumped by every <see cref="Reset"/>, so a translation made before it is not published after it.</summary>
    public int Generation { get; private set; }

    public CodeBufferKind Kind { get; }

    /// <summary>Why no executable memory is available, or null.</summary>
    public string? Failure { get; }

    public nuint Size => _size;

    public nuint Used
    {
        get { lock (_lock) return _used; }
    }

    /// <param name="refuseRwx">Behave as a host whose policy refuses writable+executable mappings (tests).</param>
    /// <param name="refuseDoubleMap">Behave as a host that refuses the memfd double mapping as well (tests).</param>
    public CodeBuffer(nuint size, bool refuseRwx = false, bool refuseDoubleMap = false)
    {
        _size = size;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            Failure = "the translator emits x86-64 code for Linux hosts only";
            return;
        }
        string? rwxError = null;
        if (!refuseRwx)
        {
            nint p = JitNative.Mmap(0, size, JitNative.ProtRead | JitNative.ProtWrite | JitNative.ProtExec,
                JitNative.MapPrivate | JitNative.MapAnonymous | JitNative.MapNoReserve, -1, 0);
            if (p != JitNative.MapFailed)
            {
                _write = _exec = p;
                Kind = CodeBufferKind.Rwx;
                return;
            }
            rwxError = $"errno {Marshal.GetLastPInvokeError()}";
        }
        else rwxError = "refused (simulated)";
        string? dmError = refuseDoubleMap ? "refused (simulated)" : TryDoubleMap(size);
        if (dmError is null)
        {
            Kind = CodeBufferKind.DoubleMapped;
            return;
        }
        Failure = $"no executable memory for translated code: RWX mapping {rwxError}, memfd double mapping {dmError}";
    }

    private string? TryDoubleMap(nuint size)
    {
        int fd = JitNative.MemfdCreate("sharpvmm-jit", JitNative.MfdCloexec);
        if (fd < 0) return $"memfd_create errno {Marshal.GetLastPInvokeError()}";
        if (JitNative.Ftruncate(fd, (nint)size) != 0)
        {
            int e = Marshal.GetLastPInvokeError();
            JitNative.Close(fd);
            return $"ftruncate errno {e}";
        }
        nint w = JitNative.Mmap(0, size, JitNative.ProtRead | JitNative.ProtWrite, JitNative.MapShared, fd, 0);
        if (w == JitNative.MapFailed)
        {
            int e = Marshal.GetLastPInvokeError();
            JitNative.Close(fd);
            return $"write view errno {e}";
        }
        nint x = JitNative.Mmap(0, size, JitNative.ProtRead | JitNative.ProtExec, JitNative.MapShared, fd, 0);
        if (x == JitNative.MapFailed)
        {
            int e = Marshal.GetLastPInvokeError();
            JitNative.Munmap(w, size);
            JitNative.Close(fd);
            return $"execute view errno {e}";
        }
        _fd = fd;
        _write = w;
        _exec = x;
        return null;
    }

    public bool Available => Kind != CodeBufferKind.None;

    /// <summary>
    /// Reserves <paramref name="length"/> bytes (16-aligned). Returns the executable address (where the code must be
    /// assembled to run) and the writable alias of it, or false when the buffer is full.
    /// </summary>
    public bool TryAllocate(int length, out nint exec, out nint write, out int generation)
    {
        lock (_lock)
        {
            generation = Generation;
            nuint need = ((nuint)length + 15) & ~(nuint)15;
            if (_write == 0 || _used + need > _size)
            {
                exec = write = 0;
                return false;
            }
            exec = _exec + (nint)_used;
            write = _write + (nint)_used;
            _used += need;
            return true;
        }
    }

    /// <summary>Whether code allocated in <paramref name="generation"/> may still be published.</summary>
    public bool IsCurrent(int generation)
    {
        lock (_lock) return generation == Generation;
    }

    /// <summary>Zeroes the valid word at <paramref name="write"/> (a translation's header) unless the buffer was reset since <paramref name="generation"/>.</summary>
    public void Kill(nint write, int generation)
    {
        lock (_lock)
        {
            if (generation == Generation && _write != 0) Volatile.Write(ref *(long*)write, 0);
        }
    }

    /// <summary>Empties the buffer. The caller guarantees no code from it can run any more.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _used = 0;
            Generation++;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_write != 0) JitNative.Munmap(_write, _size);
            if (_exec != 0 && _exec != _write) JitNative.Munmap(_exec, _size);
            if (_fd >= 0) JitNative.Close(_fd);
            _write = _exec = 0;
            _fd = -1;
        }
    }
}
