using System.Text.Json;
using SharpVmm.Core.Cpu;

namespace SharpVmm.Machine.Migration;

// TEMPORARY until the State API merges: vCPU registers only, through JSON. Deleted at the merge.
internal static class TemporaryStateShim
{
    private static readonly JsonSerializerOptions Options = new() { IncludeFields = true };

    public static void SaveMachineState(this VirtualMachine vm, Stream s)
    {
        var states = new VcpuState[vm.VcpuCount];
        for (int i = 0; i < states.Length; i++) states[i] = vm.GetVcpuState(i);
        JsonSerializer.Serialize(s, states, Options);
    }

    public static void LoadMachineState(this VirtualMachine vm, Stream s)
    {
        var states = JsonSerializer.Deserialize<VcpuState[]>(s, Options)!;
        for (int i = 0; i < states.Length; i++) vm.SetVcpuState(i, states[i]);
    }
}
