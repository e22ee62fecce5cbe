using System.Numerics;
using SharpVmm.Kvm;
using SharpVmm.Memory;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// Which guest pages changed since the last harvest. Every write the VMM and the emulator make lands in the regions'
/// <see cref="DirtyBitmap"/>s; on KVM, the guest's own stores are in KVM's dirty log, which is probed first and, where
/// it is unreliable (PVM's in-kernel emulator here never sets a bit), not trusted: <see cref="Reliable"/> is then
/// false and the caller must copy all RAM once the guest is paused.
/// </summary>
internal sealed class DirtyTracker : IDisposable
{
    private readonly GuestMemory _memory;
    private readonly KvmAccelerator? _kvm;
    private readonly ulong[][] _scratch;
    private bool _kvmLogging, _started;

    public DirtyTracker(VirtualMachine vm)
    {
        _memory = vm.Memory;
        _kvm = vm.Accelerator as KvmAccelerator;
        _scratch = new ulong[_memory.Regions.Count][];
        for (int i = 0; i < _scratch.Length; i++) _scratch[i] = new ulong[_memory.Regions[i].Dirty.WordCount];
        Reliable = true;
    }

    /// <summary>False when guest stores may go unseen (see the class remarks).</summary>
    public bool Reliable { get; private set; }

    /// <summary>What the KVM dirty-log probe found, when one ran.</summary>
    public string? Note { get; private set; }

    /// <summary>
    /// Starts tracking. <paramref name="quiesce"/> runs an action with the vCPUs parked: the emulator drops its
    /// cached write translations (which bypass the bitmap) at its next block, so a pause after enabling makes every
    /// later store visible.
    /// </summary>
    public void Start(Action<Action> quiesce)
    {
        if (_kvm is not null)
        {
            bool works = _kvm.ProbeDirtyLogWorks(out string detail);
            Note = works ? null : detail;
            Reliable = works;
            if (works)
            {
                _kvm.SetDirtyLogging(true);
                _kvmLogging = true;
                for (int i = 0; i < _scratch.Length; i++) _kvm.HarvestDirtyLog(_memory.Regions[i], _scratch[i]); // start clean
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
            if (_kvmLogging)
            {
                var k = _scratch[i];
                _kvm!.HarvestDirtyLog(regions[i], k);
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
        if (_kvmLogging)
        {
            _kvmLogging = false;
            try { _kvm!.SetDirtyLogging(false); }
            catch (KvmException) { } // the VM is going away; nothing is left to track
        }
    }
}
