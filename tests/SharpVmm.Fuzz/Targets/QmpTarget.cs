using Iced.Intel;
using SharpVmm.Boot.Flat;
using SharpVmm.Core;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Monitor.Commands;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Fuzz.Targets;

/// <summary>
/// The monitor's input path: the stream splitter cuts the bytes into JSON texts, each is parsed as a request and
/// dispatched through the real command table of a QMP server over a small (never started) VM: argument checks and
/// every query's handler. Commands that would change the run state, stop the process or write files are parsed
/// and checked but not run, so one input cannot change what the next one finds.
/// </summary>
public static class QmpTarget
{
    private static readonly string[] NotRun =
    [
        "cont", "stop", "system_reset", "system_powerdown", "quit", "human-monitor-command", "migrate", "migrate-incoming",
        "migrate_cancel", "snapshot-save", "snapshot-load", "snapshot-delete", "balloon",
    ];

    private static readonly Lazy<QmpCommandTable> s_table = new(Build);

    private static QmpCommandTable Build()
    {
        var a = new Assembler(64);
        a.cli();
        a.hlt();
        using var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), 0x100000);
        string bin = ScratchFile.Write("guest.bin", ms.ToArray());
        VirtualMachine vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 16UL << 20,
            Flat = new FlatImageSpec(bin, 0x100000, EntryMode.Long),
            Serial = "none",
        });
        var server = QmpServer.Start(vm, "unix:" + Path.Combine(Path.GetDirectoryName(bin)!, "q.sock"));
        return server.Commands;
    }

    public static void Run(byte[] data)
    {
        var table = s_table.Value;
        var splitter = new JsonStreamSplitter();
        var chunks = new List<JsonChunk>();
        // Fed in two pieces at a point the input picks, so texts that span reads are cut the same way.
        int cut = data.Length == 0 ? 0 : data[0] % (data.Length + 1);
        splitter.Feed(data.AsSpan(0, cut), chunks);
        splitter.Feed(data.AsSpan(cut), chunks);
        foreach (var chunk in chunks)
        {
            if (chunk.Text is null) continue;
            var request = QmpRequest.Parse(chunk.Text, out _, out _, out _);
            if (request is null) continue;
            try
            {
                if (Array.IndexOf(NotRun, request.Command) >= 0)
                {
                    if (!table.Contains(request.Command)) throw new InvalidOperationException($"{request.Command} is not a command any more");
                    continue;
                }
                var reply = table.Invoke(new QmpCall(request.Command, request.Arguments));
                reply?.ToJsonString();
            }
            catch (VmmException) { }
        }
    }
}
