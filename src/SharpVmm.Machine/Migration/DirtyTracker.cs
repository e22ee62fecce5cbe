using System.Numerics;
using SharpVmm.Core;
using SharpVmm.Core.Cpu;
using SharpVmm.Memory;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// Which guest pages changed since the last harvest. Every write the VMM and the emulator make lands in the regions'
/// <see cref="DirtyBitmap"/>s; where the accelerator has a dirty log of its own (<see cref="IAccelerator.DirtyLog"/>:
/// KVM, whose guest stores only the kernel sees), that log is probed first and, where it is unreliable (PVM's
/// in-kernel emulator here never sets a bit), not trusted: <see cref="Reliable"/> is then
/// false and the caller must copy all RAM once the guest is paused.
/// </summary>
internal sealed class DirtyTracker : IDisposable
{
    private readonly GuestMemory _memory;
    private readonly IDirtyLog? _log;
    private readonly ulong[][] _scratch;
    private bool _logging, _started;

    public DirtyTracker(VirtualMachine vm)
    {
        _memory = vm.Memory;
        _log = vm.Accelerator.DirtyLog;
        _scratch = new ulong[_memory.Regions.Count][];
        for (int i = 0; i < _scratch.Length; i++) _scratch[i] = new ulong[_memory.Regions[i].Dirty.WordCount];
        Reliable = true;
    }

    /// <summary>False when guest stores may go unseen (see the class remarks).</summary>
    public bool Reliable { get; private set; }

    /// <summary>What the dirty-log probe found, when one ran.</summary>
    public string? Note { get; private set; }

    /// <summary>
    /// Starts tracking. <paramref name="quiesce"/> runs an action with the vCPUs parked: the emulator drops its
    /// cached write translations (which bypass the bitmap) at its next block, so a pause after enabling makes every
    /// later store visible.
    /// </summary>
    public void Start(Action<Action> quiesce)
    {
        if (_log is not null)
        {
            bool works = _log.ProbeDirtyLogWorks(out string detail);
            Note = works ? null : detail;
            Reliable = works;
            if (works)
            {
                _log.SetDirtyLogging(true);
                _logging = true;
                for (int i = 0; i < _scratch.Length; i++) _log.HarvestDirtyLog(_memory.Regions[i], _scratch[i]); // start clean
            }
        }
        quiesce(() =>
        {
            foreach (var r in _memory.Regions)
            {
                r.Dirty.Clear();
                r.Dirty.Enabled = true;
            }
        });
        _started = true;
    }

    /// <summary>Moves the pages dirtied since the last call into <paramref name="into"/> (one bitmap per region, overwritten); returns their number.</summary>
    public long Harvest(ulong[][] into)
    {
        if (!_started) throw new InvalidOperationException("dirty tracking was not started");
        long count = 0;
        var regions = _memory.Regions;
        for (int i = 0; i < regions.Count; i++)
        {
            var bits = into[i];
            regions[i].Dirty.Harvest(bits);
            if (_logging)
            {
                var k = _scratch[i];
                _log!.HarvestDirtyLog(regions[i], k);
                for (int w = 0; w < bits.Length; w++) bits[w] |= k[w];
            }
            foreach (ulong w in bits) count += BitOperations.PopCount(w);
        }
        return count;
    }

    /// <summary>Bitmaps shaped for <see cref="Harvest"/>.</summary>
    public ulong[][] NewBitmaps()
    {
        var b = new ulong[_scratch.Length][];
        for (int i = 0; i < b.Length; i++) b[i] = new ulong[_scratch[i].Length];
        return b;
    }

    /// <summary>Bitmaps with every page of RAM set.</summary>
    public ulong[][] AllPages()
    {
        var b = NewBitmaps();
        var regions = _memory.Regions;
        for (int i = 0; i < b.Length; i++)
        {
            long pages = (long)(regions[i].Size >> MigrationProtocol.PageShift);
            for (long p = 0; p < pages; p++) b[i][p >> 6] |= 1UL << (int)(p & 63);
        }
        return b;
    }

    public void Dispose()
    {
        foreach (var r in _memory.Regions) r.Dirty.Enabled = false;
        if (_logging)
        {
            _logging = false;
            try { _log!.SetDirtyLogging(false); }
            catch (VmmException) { } // the VM is going away; nothing is left to track
        }
    }
}
