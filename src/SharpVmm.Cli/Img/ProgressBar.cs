namespace SharpVmm.Cli.Img;

/// <summary>qemu-img -p's progress line "    (12.34/100%)", redrawn in place, at most every 0.1 s.</summary>
internal sealed class ProgressBar(TextWriter output)
{
    private readonly object _lock = new();
    private double _last = -1;
    private long _lastTicks;

    public void Report(double percent)
    {
        lock (_lock)
        {
            var now = Environment.TickCount64;
            if (percent < 100 && (percent - _last < 0.01 || now - _lastTicks < 100)) return;
            _last = percent;
            _lastTicks = now;
            output.Write(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"    ({percent:0.00}/100%)\r"));
            output.Flush();
        }
    }

    public void Done()
    {
        Report(100);
        output.WriteLine();
    }
}
