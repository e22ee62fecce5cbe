namespace SharpVmm.Block.CrashWriter;

/// <summary>The writer's deterministic plan, shared with the test that verifies it.</summary>
public sealed class WritePlan
{
    private readonly int _seed;
    private readonly int[] _order;
    public int SlotSize { get; } = 16 << 10;

    public WritePlan(int seed, long imageSize)
    {
        _seed = seed;
        var slots = (int)(imageSize / SlotSize);
        _order = new int[slots];
        for (var i = 0; i < slots; i++) _order[i] = i;
        new Random(seed).Shuffle(_order);
    }

    public int Slots => _order.Length;

    /// <summary>Write i: each slot is written once (the plan wraps after Slots writes); every 11th is a zero write.</summary>
    public (long Offset, byte[]? Data) Write(int i)
    {
        var slot = _order[i % _order.Length];
        var off = (long)slot * SlotSize;
        if (i % 11 == 10) return (off, null);
        var len = 1 + (int)((uint)(i * 2654435761u ^ (uint)_seed) % (uint)SlotSize);
        var data = new byte[len];
        for (var k = 0; k < len; k++) data[k] = (byte)(k * 31 + i * 7 + _seed + 1 | 1);
        return (off, data);
    }
}
