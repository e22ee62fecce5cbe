using System.Reflection;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Io;
using SharpVmm.Memory;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// Creates the emulator under test: <c>new SharpVmm.Emulator.EmuAccelerator(memory, bus, options: null)</c>.
/// Bound late, so the differential suite builds and its native half runs while the emulator is still being
/// written; every class then fails with <see cref="Unavailable"/> as its message.
/// </summary>
internal static class EmulatorFactory
{
    private const string TypeName = "SharpVmm.Emulator.EmuAccelerator";

    private static readonly Lazy<(ConstructorInfo? Ctor, string? Why)> Ctor = new(Find);

    /// <summary>Why the emulator cannot be created, or null when it can.</summary>
    public static string? Unavailable => Ctor.Value.Why;

    public static IAccelerator Create(GuestMemory memory, IIoBus bus)
    {
        var (ctor, why) = Ctor.Value;
        if (ctor is null) throw new InvalidOperationException(why);
        var args = new object?[ctor.GetParameters().Length];
        args[0] = memory;
        args[1] = bus;
        try
        {
            return (IAccelerator)ctor.Invoke(args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }

    private static (ConstructorInfo?, string?) Find()
    {
        Assembly asm;
        try { asm = Assembly.Load("SharpVmm.Emulator"); }
        catch (Exception e) { return (null, $"emulator not available: cannot load SharpVmm.Emulator ({e.Message})"); }
        var type = asm.GetType(TypeName);
        if (type is null)
            return (null, $"emulator not available: {TypeName} does not exist yet in SharpVmm.Emulator (merge wt/emu)");
        if (!typeof(IAccelerator).IsAssignableFrom(type))
            return (null, $"emulator not usable: {TypeName} does not implement IAccelerator");
        foreach (var c in type.GetConstructors())
        {
            var p = c.GetParameters();
            if (p.Length >= 2 && p[0].ParameterType == typeof(GuestMemory) && p[1].ParameterType == typeof(IIoBus)
                && p.Skip(2).All(x => x.IsOptional || !x.ParameterType.IsValueType))
                return (c, null);
        }
        return (null, $"emulator not usable: {TypeName} has no constructor (GuestMemory, IIoBus, EmuOptions? = null)");
    }
}
