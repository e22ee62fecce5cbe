using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SharpVmm.Emulator;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// QEMU's <c>x-query-jit</c> (QMP: <c>{"human-readable-text": ...}</c>) and <c>info jit</c> (HMP): what the emu
/// accelerator's translator has done. QEMU prints TCG's translation-buffer statistics; SharpVmm prints its own.
/// </summary>
public static class JitCommands
{
    public static void Register(QmpCommandTable table, VmMonitor vm)
        => table.Register("x-query-jit", _ => new JsonObject { ["human-readable-text"] = HumanInfo(vm) });

    public static string HumanInfo(VmMonitor vm)
    {
        if (vm.Vm.Accelerator is not EmuAccelerator emu) return "JIT not enabled: the accelerator is not emu\n";
        var s = emu.GetJitStatistics();
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.Append(c, $"Translation mode          {s.Mode.ToString().ToLowerInvariant()} (threshold {s.Threshold} executions)\n");
        sb.Append(c, $"Code buffer               {s.Buffer}, {s.BufferUsedBytes} of {s.BufferBytes} bytes used, {s.BufferFlushes} flushes\n");
        if (s.Failure is not null) sb.Append(c, $"No translation because    {s.Failure}\n");
        sb.Append(c, $"Translated blocks         {s.BlocksTranslated} ({s.CodeBytes} bytes of host code, {s.BlocksNotTranslatable} blocks left to the interpreter)\n");
        sb.Append(c, $"Translation time          {s.TranslationTime.TotalMilliseconds:F1} ms\n");
        sb.Append(c, $"Instructions retired      {s.InstructionsRetired}, {100 * s.TranslatedShare:F1}% in translated code\n");
        sb.Append(c, $"Entries into host code    {s.Entries}, {s.PrefixExits} left early for the interpreter\n");
        sb.Append(c, $"Chained block transitions {s.ChainedTransitions} (translated block to translated block without the dispatcher)\n");
        sb.Append(c, $"Early exits by reason     {s.MissExits} slow path of a translated op (TLB miss, page crossing, misaligned LOCK, non-canonical target), {s.UntranslatedExits} op not translated\n");
        return sb.ToString();
    }
}
