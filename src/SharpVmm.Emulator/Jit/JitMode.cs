namespace SharpVmm.Emulator;

/// <summary>Whether the emu accelerator translates hot guest blocks to host code (<c>--accel emu,jit=</c>).</summary>
public enum JitMode
{
    /// <summary>The interpreter runs everything.</summary>
    Off,
    /// <summary>Blocks that ran <see cref="EmuOptions.JitThreshold"/> times are translated.</summary>
    On,
    /// <summary>Every block is translated at its first execution (for tests).</summary>
    Forced,
}
