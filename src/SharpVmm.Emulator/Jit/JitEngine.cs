using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace SharpVmm.Emulator.Jit;

/// <summary>
/// The second tier of one VM: its code buffer, the translation policy and the counters. Translation runs
/// synchronously on the vCPU thread that found the block hot; the code is published through <see cref="Block.Jit"/>
/// (and from there into chain slots and native jump caches), and invalidating a block kills its code's entry, so it
/// never runs again however it is reached.
/// </summary>
internal sealed unsafe class JitEngine : IDisposable
{
    private readonly CodeBuffer _buffer;
    private readonly BlockCache _cache;
    private readonly object _flushLock = new();
    private X86Cpu[] _cpus = [];
    private volatile int _flushing;

    /// <summary>Translation id → weak handle of its block (generated code returns ids; it holds no references).</summary>
    private GCHandle[] _blocks = new GCHandle[1024];
    private int _nextId;
    private readonly object _idLock = new();

    private readonly ILogger? _log;
    private long _compileErrors, _blocksTranslated, _untranslatable, _codeBytes, _translationTicks, _bufferFlushes, _guestInstrsTranslated;

    public JitEngine(EmuOptions options, BlockCache cache)
    {
        Mode = options.Jit;
        Threshold = options.Jit == JitMode.Forced ? 1 : options.JitThreshold;
        _cache = cache;
        _log = options.Logger;
        _buffer = new CodeBuffer((nuint)options.JitCodeBytes, options.JitRefuseRwx, options.JitRefuseDoubleMap);
        if (_buffer.Failure is not null)
            options.Logger?.LogWarning("emu: {Why}; running the interpreter alone", _buffer.Failure);
    }

    public JitMode Mode { get; }
    public int Threshold { get; }
    public bool Available => _buffer.Available;
    public CodeBufferKind BufferKind => _buffer.Kind;
    public string? Failure => _buffer.Failure;

    public long BlocksTranslated => Interlocked.Read(ref _blocksTranslated);
    public long Untranslatable => Interlocked.Read(ref _untranslatable);
    public long CodeBytes => Interlocked.Read(ref _codeBytes);
    public long GuestInstructionsTranslated => Interlocked.Read(ref _guestInstrsTranslated);
    public TimeSpan TranslationTime => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _translationTicks));
    public long CompileErrors => Interlocked.Read(ref _compileErrors);
    public long BufferFlushes => Interlocked.Read(ref _bufferFlushes);
    public ulong BufferUsed => _buffer.Used;

    /// <summary>Early exits by guest instruction, when SHARPVMM_JIT_STATS=2 asks for them.</summary>
    public ExitHistogram? Exits { get; } = ExitHistogram.Enabled ? new() : null;

    public void Register(X86Cpu cpu)
    {
        lock (_flushLock) _cpus = [.. _cpus, cpu];
    }

    public void Unregister(X86Cpu cpu)
    {
        lock (_flushLock) _cpus = Array.FindAll(_cpus, c => c != cpu);
    }

    /// <summary>The block translation <paramref name="id"/> was made for, or null when it is gone (collected after its invalidation).</summary>
    public Block? BlockOf(int id)
    {
        var blocks = Volatile.Read(ref _blocks);
        if ((uint)id >= (uint)blocks.Length) return null;
        var h = blocks[id];
        return h.IsAllocated ? h.Target as Block : null;
    }

    private int NewId()
    {
        lock (_idLock)
        {
            int id = _nextId++;
            if (id == _blocks.Length)
            {
                var bigger = new GCHandle[_blocks.Length * 2];
                _blocks.AsSpan().CopyTo(bigger);
                Volatile.Write(ref _blocks, bigger);
            }
            return id;
        }
    }

    private void SetBlock(int id, Block b)
    {
        lock (_idLock) _blocks[id] = GCHandle.Alloc(b, GCHandleType.Weak);
    }

    private void FreeIds()
    {
        lock (_idLock)
        {
            for (int i = 0; i < _nextId; i++)
                if (_blocks[i].IsAllocated) _blocks[i].Free();
            Array.Clear(_blocks);
            _nextId = 0;
        }
    }

    /// <summary>
    /// Translates <paramref name="b"/> with the calling vCPU's compiler and publishes the result in the block. The
    /// vCPU counts as inside translated code meanwhile, so a flush cannot recycle the buffer under the copy.
    /// </summary>
    public void Translate(Block b, BlockCompiler compiler, X86Cpu cpu)
    {
        long t0 = Stopwatch.GetTimestamp();
        int failedGeneration = -1;
        cpu.SetInJit(1);
        Interlocked.MemoryBarrier(); // pairs with the flusher's: either it sees us inside, or we see it flushing
        try
        {
            if (_flushing != 0 || !b.Valid) return;
            int id = NewId();
            BlockCompiler.Output o;
            bool ok;
            try { ok = compiler.Emit(b, id, out o); }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
            {
                // A translator bug must cost speed, never the guest: the interpreter keeps this block.
                if (Interlocked.Increment(ref _compileErrors) == 1)
                    _log?.LogWarning("emu: translating a block failed ({Error}); it stays interpreted", ex.Message);
                b.Jit = Translation.None;
                return;
            }
            if (!ok)
            {
                b.Jit = Translation.None;
                Interlocked.Increment(ref _untranslatable);
                return;
            }
            if ((nuint)o.Code.Length > _buffer.Size / 2)
            {
                // It would flush everything else at every entry (a tiny tb-size): the interpreter keeps it.
                b.Jit = Translation.None;
                Interlocked.Increment(ref _untranslatable);
                return;
            }
            if (!_buffer.TryAllocate(o.Code.Length, out nint exec, out nint write, out int gen))
            {
                // Full: drop everything (the blocks and their code) once no vCPU runs translated code, then go on
                // with this block, which the flush invalidated too; the interpreter handles it this time.
                failedGeneration = gen;
                return;
            }
            // Chain slots start at their exits' stubs.
            var code = o.Code;
            for (int i = 0; i < o.StubOffsets.Length; i++)
                BitConverter.TryWriteBytes(code.AsSpan(8 + 8 * i, 8), (long)(exec + o.StubOffsets[i]));
            code.AsSpan().CopyTo(new Span<byte>((void*)write, code.Length));
            var t = new Translation(exec + Translation.HeaderBytes, write, o.Covered, o.NeedsFlagsIn, code.Length, id, _buffer, gen, o.Targets);
            SetBlock(id, b);
            Interlocked.Exchange(ref b.Jit, t);
            // Invalidation clears Valid, then Jit: seeing Valid still set here means a later invalidation kills t.
            if (!b.Valid)
            {
                Interlocked.CompareExchange(ref b.Jit, null, t);
                t.Kill();
                return;
            }
            if (JitLog.Enabled) JitLog.Translated(b, exec + Translation.HeaderBytes, code.AsSpan(Translation.HeaderBytes), o.Covered);
            Interlocked.Increment(ref _blocksTranslated);
            Interlocked.Add(ref _codeBytes, code.Length);
            Interlocked.Add(ref _guestInstrsTranslated, o.GuestInstrs);
        }
        finally
        {
            cpu.SetInJit(0);
            if (failedGeneration >= 0) FlushBuffer(failedGeneration);
            Interlocked.Add(ref _translationTicks, Stopwatch.GetTimestamp() - t0);
        }
    }

    /// <summary>
    /// Empties the code buffer: every block goes (so no <see cref="Block.Jit"/> points into it any more and every
    /// translation's entry is killed), each vCPU's native jump cache is marked stale, and the buffer is reused only
    /// after every vCPU is seen outside translated code twice (the second time catches one that entered through a
    /// translation published while the first wait ran).
    /// </summary>
    private void FlushBuffer(int failedGeneration)
    {
        lock (_flushLock)
        {
            if (!_buffer.IsCurrent(failedGeneration)) return; // another vCPU flushed already
            _flushing = 1;
            _cache.FlushAll();
            for (int pass = 0; pass < 2; pass++)
            {
                Interlocked.MemoryBarrierProcessWide();
                foreach (var c in _cpus)
                {
                    var spin = new SpinWait();
                    while (c.InTranslatedCode) spin.SpinOnce();
                }
            }
            _buffer.Reset();
            FreeIds();
            Interlocked.Increment(ref _bufferFlushes);
            _flushing = 0;
        }
    }

    public void Dispose()
    {
        _buffer.Dispose();
        FreeIds();
    }
}
