using System.Globalization;

namespace SharpVmm.Boot.Initramfs;

/// <summary>
/// The kernel command line that boots the test guest reliably on a software CPU (measured under QEMU TCG with
/// three guests on two busy host cores: without tsc_early_khz= most guests hang after "Marking TSC unstable due
/// to could not calculate TSC khz"; with it all boot; tsc=reliable stops the clocksource watchdog from
/// dropping the TSC when the emulated CPU is starved).
/// </summary>
public static class GuestKernelCommandLine
{
    /// <summary>
    /// "console=ttyS0 panic=-1 tsc_early_khz=K tsc=reliable" (tsc_early_khz omitted when unknown), plus
    /// <paramref name="extra"/>. K must be the rate the guest's RDTSC counts at.
    /// </summary>
    public static string Recommended(long? tscKhz, string? extra = null)
    {
        if (tscKhz is <= 0 or > uint.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(tscKhz), tscKhz, "the TSC frequency in kHz must be positive and fit 32 bits");
        var parts = new List<string> { "console=ttyS0", "panic=-1" };
        if (tscKhz is { } khz)
            parts.Add("tsc_early_khz=" + khz.ToString(CultureInfo.InvariantCulture));
        parts.Add("tsc=reliable");
        if (!string.IsNullOrWhiteSpace(extra))
            parts.Add(extra.Trim());
        return string.Join(' ', parts);
    }
}
