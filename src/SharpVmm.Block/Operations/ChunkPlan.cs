using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpVmm.Block.Operations;

/// <summary>
/// One convert worker's view of a chunk of the source: which units (target clusters, or 4 KiB for raw) hold non-zero
/// bytes, found without reading what the allocation map already says is zero. Consecutive non-zero units form runs,
/// each written with one call. (Reading through a memory map of the source instead of pread was measured: no gain,
/// as the page-cache copy of a read costs little beside the write's, so the simpler and SIGBUS-free pread stays.)
/// </summary>
internal sealed unsafe class ChunkPlan
{
    private readonly byte[] _buffer;
    private readonly byte* _bufPtr;
    private readonly int _unit;
    private readonly nint[] _unitPtr;
    // Extents of the chunk as the allocation map gives them: start (chunk-relative), length, and where the bytes are
    // (0 = zero; else their address in the buffer).
    private int[] _segStart = new int[64];
    private int[] _segLen = new int[64];
    private nint[] _segPtr = new nint[64];
    private int _segs;

    public ChunkPlan(int chunk, int unit)
    {
        _buffer = GC.AllocateUninitializedArray<byte>(chunk, pinned: true);
        _bufPtr = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_buffer));
        _unit = unit;
        _unitPtr = new nint[chunk / unit + 1];
        RunStart = new int[chunk / unit + 1];
        RunLen = new int[chunk / unit + 1];
        RunPtr = new nint[chunk / unit + 1];
    }

    public int Runs { get; private set; }
    public readonly int[] RunStart;
    public readonly int[] RunLen;
    public readonly nint[] RunPtr;
    public int Unit => _unit;

    public ReadOnlySpan<byte> Run(int k) => new((void*)RunPtr[k], RunLen[k]);
    public ReadOnlySpan<byte> At(nint p, int len) => new((void*)p, len);

    /// <summary>Plans the chunk [off, off+len) of source; afterwards <see cref="Runs"/> says how many non-zero runs it has.</summary>
    public void Load(IBlockImage source, long off, int len)
    {
        Runs = 0;
        _segs = 0;
        var pos = off;
        var end = off + len;
        while (pos < end)
        {
            var st = source.GetStatus(pos, end - pos);
            var rel = (int)(pos - off);
            var n = (int)st.Length;
            if (n <= 0) throw new BlockImageException($"'{source.Path}': the allocation map returned an empty extent at {pos}");
            nint p;
            if (st.Has(BlockStatusFlags.Zero) && !st.Has(BlockStatusFlags.Data)) p = 0;
            else
            {
                source.Read(pos, _buffer.AsSpan(rel, n));
                p = (nint)(_bufPtr + rel);
            }
            AddSegment(rel, n, p);
            pos += n;
        }
        PlanUnits(len);
    }

    private void AddSegment(int start, int len, nint p)
    {
        if (_segs > 0)
        {
            // Merge with the previous extent when the bytes continue (the map may split where it need not).
            var j = _segs - 1;
            if ((p == 0 && _segPtr[j] == 0) || (p != 0 && _segPtr[j] != 0 && _segPtr[j] + _segLen[j] == p))
            {
                _segLen[j] += len;
                return;
            }
        }
        if (_segs == _segStart.Length)
        {
            Array.Resize(ref _segStart, _segs * 2);
            Array.Resize(ref _segLen, _segs * 2);
            Array.Resize(ref _segPtr, _segs * 2);
        }
        _segStart[_segs] = start;
        _segLen[_segs] = len;
        _segPtr[_segs] = p;
        _segs++;
    }

    private void PlanUnits(int len)
    {
        var s = 0;
        var units = (len + _unit - 1) / _unit;
        for (var u = 0; u < units; u++)
        {
            var us = u * _unit;
            var ul = Math.Min(_unit, len - us);
            while (_segStart[s] + _segLen[s] <= us) s++;
            nint p;
            if (_segStart[s] + _segLen[s] >= us + ul) p = _segPtr[s] == 0 ? 0 : _segPtr[s] + (us - _segStart[s]);
            else p = Gather(s, us, ul);
            if (p != 0 && new ReadOnlySpan<byte>((void*)p, ul).IndexOfAnyExcept((byte)0) < 0) p = 0;
            _unitPtr[u] = p;
            if (p == 0) continue;
            if (Runs > 0 && RunStart[Runs - 1] + RunLen[Runs - 1] == us && RunPtr[Runs - 1] + RunLen[Runs - 1] == p)
                RunLen[Runs - 1] += ul;
            else
            {
                RunStart[Runs] = us;
                RunLen[Runs] = ul;
                RunPtr[Runs] = p;
                Runs++;
            }
        }
    }

    /// <summary>A unit made of several extents: assembled in the buffer at its own position.</summary>
    private nint Gather(int s, int us, int ul)
    {
        var end = us + ul;
        for (var j = s; j < _segs && _segStart[j] < end; j++)
        {
            var a = Math.Max(us, _segStart[j]);
            var b = Math.Min(end, _segStart[j] + _segLen[j]);
            var dst = _buffer.AsSpan(a, b - a);
            var src = _segPtr[j];
            if (src == 0) dst.Clear();
            else if (src + (a - _segStart[j]) != (nint)(_bufPtr + a))
                new ReadOnlySpan<byte>((void*)(src + (a - _segStart[j])), b - a).CopyTo(dst);
        }
        return (nint)(_bufPtr + us);
    }
}
