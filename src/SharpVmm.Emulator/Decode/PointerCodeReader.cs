using Iced.Intel;

namespace SharpVmm.Emulator;

/// <summary>Feeds Iced from a bounded range of host memory (one guest page), reporting end-of-input at the bound.</summary>
internal sealed unsafe class PointerCodeReader : CodeReader
{
    private byte* _p;
    private int _left;

    public void Reset(byte* p, int length)
    {
        _p = p;
        _left = length;
    }

    public override int ReadByte()
    {
        if (_left <= 0) return -1;
        _left--;
        return *_p++;
    }
}
