using System.CommandLine;
using System.Globalization;
using System.Text;
using SharpVmm.Block;
using SharpVmm.Block.Qcow2;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Img;

internal static class ImgSnapshot
{
    public static Command Build()
    {
        var list = ImgRunner.Flag("-l", "list snapshots");
        var create = new Option<string>("-c") { Description = "create a snapshot with this name" };
        var apply = new Option<string>("-a") { Description = "revert the image to this snapshot" };
        var delete = new Option<string>("-d") { Description = "delete this snapshot" };
        var fmt = ImgRunner.FormatOption();
        var quiet = ImgRunner.Flag("-q", "quiet");
        var force = ImgRunner.Flag("-U", "open even if in use", "--force-share");
        var file = ImgRunner.FileArgument();
        var cmd = new Command("snapshot", "List, create, apply or delete internal snapshots") { list, create, apply, delete, fmt, quiet, force, file };
        cmd.SetAction(pr => ImgRunner.Run(pr, (o, e) =>
        {
            var path = pr.GetValue(file)!;
            var c = pr.GetValue(create);
            var a = pr.GetValue(apply);
            var d = pr.GetValue(delete);
            var n = (c != null ? 1 : 0) + (a != null ? 1 : 0) + (d != null ? 1 : 0) + (pr.GetValue(list) ? 1 : 0);
            if (n != 1) throw new ArgumentException("give exactly one of -l, -c NAME, -a NAME, -d NAME");
            var readOnly = c == null && a == null && d == null;
            using var img = ImageFactory.OpenQcow2(path, new ImageOpenOptions { Format = pr.GetValue(fmt), ReadOnly = readOnly, OpenBacking = !readOnly, ForceShare = pr.GetValue(force) });
            if (c != null) img.CreateSnapshot(c);
            else if (a != null) img.ApplySnapshot(a);
            else if (d != null) img.DeleteSnapshot(d);
            else
            {
                var sb = new StringBuilder("Snapshot list:\n");
                AppendList(sb, img.Snapshots);
                o.Write(sb.ToString());
            }
            return 0;
        }));
        return cmd;
    }

    public static void AppendList(StringBuilder sb, IReadOnlyList<Qcow2Snapshot> snaps)
    {
        sb.Append("ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n");
        foreach (var s in snaps)
        {
            var date = DateTimeOffset.FromUnixTimeSeconds(s.DateSeconds).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
            var clock = TimeSpan.FromTicks((long)(s.VmClockNanoseconds / 100));
            var clockText = string.Create(CultureInfo.InvariantCulture, $"{(int)clock.TotalHours:00}:{clock.Minutes:00}:{clock.Seconds:00}.{clock.Milliseconds:000}");
            sb.Append(CultureInfo.InvariantCulture, $"{s.Id,-9} {s.Name,-16} {SizeParser.Human(s.VmStateSize),8} {date,19} {clockText,12} {s.Icount ?? 0,10}\n");
        }
    }
}
