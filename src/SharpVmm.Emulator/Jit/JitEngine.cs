using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace SharpVmm.Emulator.Jit;

/// <summary>
/// The second tier of one VM: its code buffer, the translation policy and the counters. Translation runs
/// synchronously on the vCPU thread that found the block hot; the code is published through <see cref="Block.Jit"/>
/// only, so invalidating a block (which clears that field) is all it takes for its code never to run again.
/// </summary>
internal sealed unsafe class JitEngine : IDisposable
{
    private readonly CodeBuffer _buffer;
    private readonly BlockCache _cache;
    private readonly object _flushLock = new();
    private X86Cpu[] _cpus = [];

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

    public void Register(X86Cpu cpu)
    {
        lock (_flushLock) _cpus = [.. _cpus, cpu];
    }

    public void Unregister(X86Cpu cpu)
    {
        lock (_flushLock) _cpus = Array.FindAll(_cpus, c => c != cpu);
    }

    /// <summary>Translates <paramref name="b"/> with the calling vCPU's compiler and publishes the result in the block.</summary>
    public void Translate(Block b, BlockCompiler compiler)
    {
        long t0 = Stopwatch.GetTimestamp();
        try
        {
            if (!b.Valid) return;
            BlockCompiler.Output o;
            bool ok;
            try { ok = compiler.Emit(b, out o); }
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
            if (!_buffer.TryAllocate(o.Code.Length, out nint exec, out nint write, out int gen))
            {
                // Full: drop everything (the blocks and their code) once no vCPU runs translated code, then go on
                // with this block, which the flush invalidated too; the interpreter handles it this time.
                FlushBuffer(gen);
                return;
            }
            o.Code.AsSpan().CopyTo(new Span<byte>((void*)write, o.Code.Length));
            var t = new Translation(exec, o.Covered, o.NeedsFlagsIn, o.Code.Length);
            if (!_buffer.IsCurrent(gen)) return;
            b.Jit = t;
            // Invalidation clears Valid before Jit: seeing Valid still set here means any later invalidation clears our store.
            if (!b.Valid) { b.Jit = null; return; }
            if (JitLog.Enabled) JitLog.Translated(b, exec, o.Code, o.Covered);
            Interlocked.Increment(ref _blocksTranslated);
            Interlocked.Add(ref _codeBytes, o.Code.Length);
            Interlocked.Add(ref _guestInstrsTranslated, o.GuestInstrs);
        }
        finally
        {
            Interlocked.Add(ref _translationTicks, Stopwatch.GetTimestamp() - t0);
        }
    }

    /// <summary>
    /// Empties the code buffer: every block goes (so no <see cref="Block.Jit"/> points into it any more), a
    /// process-wide barrier makes that visible to every vCPU's next entry, and the buffer is reused only after each
    /// other vCPU is seen outside translated code (a translated block runs to its exit without waiting on anything).
    /// </summary>
    private void FlushBuffer(int failedGeneration)
    {
        lock (_flushLock)
        {
            if (!_buffer.IsCurrent(failedGeneration)) return; // another vCPU flushed already
            _cache.FlushAll();
            Interlocked.MemoryBarrierProcessWide();
            foreach (var c in _cpus)
            {
                var spin = new SpinWait();
                while (c.InTranslatedCode) spin.SpinOnce();
            }
            _buffer.Reset();
            Interlocked.Increment(ref _bufferFlushes);
        }
    }

    public void Dispose() => _buffer.Dispose();
}
