using SharpVmm.Core.Cpu;
using SharpVmm.Core.Io;
using SharpVmm.Memory;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>Creates the emulator under test. A fresh accelerator per case keeps block caches from leaking between cases.</summary>
internal static class EmulatorFactory
{
    /// <summary>Why the emulator cannot be created, or null when it can (kept for classes gated on it).</summary>
    public static string? Unavailable => null;

    public static IAccelerator Create(GuestMemory memory, IIoBus bus) => new EmuAccelerator(memory, bus, Support.TestJit.Apply(null));
}
