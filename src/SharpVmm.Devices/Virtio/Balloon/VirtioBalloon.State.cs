using SharpVmm.Core.State;

namespace SharpVmm.Devices.Virtio.Balloon;

/// <summary>
/// The balloon's own state: the host's target, the size the driver reported, which pages are in the balloon (their
/// contents are gone, so a restored guest must not get them back as data) and the stats buffer the device is holding,
/// which the driver will not post again until the device returns it.
/// </summary>
public sealed partial class VirtioBalloon : IStateful
{
    public string StateId => "virtio-balloon";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        lock (_statsLock)
        {
            w.WriteU64(_pageCount);
            w.WriteU32(_targetPages);
            w.WriteU32(_actualPages);
            w.WriteI32(_heldStatsHead ?? -1);
            w.WriteU64Array(_pages.Words);
        }
    }

    public void LoadState(StateReader r, int version)
    {
        ulong pages = r.ReadU64("guest page count");
        if (pages != _pageCount)
            throw r.Error($"the saved balloon covered {pages} pages of guest RAM, this VM has {_pageCount}: give the same --memory");
        uint target = r.ReadU32("target");
        uint actual = r.ReadU32("actual");
        int held = r.ReadInt(-1, ushort.MaxValue, "held stats buffer");
        ulong[] words = r.ReadU64Array((int)((_pageCount + 63) / 64), "balloon pages");
        lock (_statsLock)
        {
            if (!_pages.TryLoad(words)) throw r.Error("the balloon page bitmap does not match guest RAM");
            _targetPages = target;
            _actualPages = actual;
            _heldStatsHead = held < 0 ? null : held;
        }
    }
}
