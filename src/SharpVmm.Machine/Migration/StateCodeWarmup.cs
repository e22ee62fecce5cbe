using System.Reflection;
using System.Runtime.CompilerServices;
using SharpVmm.Core.State;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// Compiles the machine-state save and load code ahead of use. A migration runs it once per process, while the guest
/// is paused: left to the JIT, its first call costs hundreds of milliseconds of downtime on a loaded host. Warming it
/// during setup (source) or while waiting for the source (target) keeps that out of the downtime.
/// </summary>
internal static class StateCodeWarmup
{
    public static void Run()
    {
        // The state record's checksum: the first use loads the host's crypto library.
        System.Security.Cryptography.SHA256.HashData(ReadOnlySpan<byte>.Empty);
        // Ahead-of-time compiled, there is nothing to warm.
        if (RuntimeFeature.IsDynamicCodeSupported) PrepareStateCode();
    }

    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Only runs with a JIT, where nothing is trimmed.")]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Only runs with a JIT, where nothing is trimmed.")]
    private static void PrepareStateCode()
    {
        foreach (var assembly in AppDomain.CurrentDomain.GetAssemblies())
        {
            if (assembly.GetName().Name?.StartsWith("SharpVmm.", StringComparison.Ordinal) != true) continue;
            Type[] types;
            try { types = assembly.GetTypes(); }
            catch (ReflectionTypeLoadException ex) { types = [.. ex.Types.Where(t => t is not null)!]; }
            foreach (var type in types)
            {
                if (type.ContainsGenericParameters) continue;
                bool wanted = typeof(IStateful).IsAssignableFrom(type)
                    || type.Namespace is "SharpVmm.Core.State" or "SharpVmm.Machine.State" or "SharpVmm.Machine.Migration" or "SharpVmm.Kvm.State";
                if (!wanted) continue;
                foreach (var m in type.GetMethods(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                {
                    if (m.IsAbstract || m.ContainsGenericParameters) continue;
                    try { RuntimeHelpers.PrepareMethod(m.MethodHandle); }
                    catch (Exception e) when (e is ArgumentException or NotSupportedException or InvalidOperationException or BadImageFormatException) { }
                }
            }
        }
    }
}
