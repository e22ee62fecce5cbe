using Microsoft.Extensions.Logging;
using SharpVmm.Core;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Balloon;
using SharpVmm.Machine.Config;
using SharpVmm.Memory;
using SharpVmm.Memory.Host;

namespace SharpVmm.Machine.Board;

public static partial class VmBuilder
{
    /// <summary>The id the balloon is registered under in <see cref="VirtualMachine.Devices"/> (QMP balloon finds it there).</summary>
    public const string BalloonId = "virtio-balloon";

    private static void AddBalloon(VmConfig config, GuestMemory memory, Action<IVirtioDevice, string> add, ILoggerFactory loggers)
    {
        if (!config.Balloon) return;
        add(new VirtioBalloon(memory, config.BalloonDeflateOnOom, loggers.CreateLogger("SharpVmm.VirtioBalloon")), BalloonId);
    }

    /// <summary>Guest RAM with the host features the configuration asks for; a host that cannot provide one is a configuration error.</summary>
    private static GuestMemory CreateGuestMemory(VmConfig config, ILogger log)
    {
        var o = config.MemoryOptions;
        GuestMemory memory;
        try
        {
            memory = GuestMemory.Create(config.MemoryBytes, o);
        }
        catch (GuestMemoryException ex)
        {
            throw new ConfigurationException($"--memory: {ex.Message}");
        }
        if (o.Merge)
        {
            // Registered either way; say so when nothing will be merged until the operator starts the daemon.
            var ksm = new KsmHost();
            try
            {
                if (ksm.Available && ksm.Run != 1)
                    log.LogInformation("merge=on: guest RAM is registered with KSM, but the host's KSM daemon is not running "
                        + "({Dir}/run = {Run}); nothing is merged until 'sharpvmm host ksm enable'", ksm.Directory, ksm.Run);
            }
            catch (HostMemoryException ex)
            {
                log.LogInformation("merge=on: cannot read the host's KSM state: {Message}", ex.Message);
            }
        }
        return memory;
    }
}
