using Microsoft.Extensions.Logging;
using SharpVmm.Devices.Net;
using SharpVmm.Devices.Net.Slirp;
using SharpVmm.Devices.Net.Tap;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Net;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Board;

public static partial class VmBuilder
{
    /// <summary>One virtio-net NIC per <c>--net</c>, named virtio-net0, virtio-net1, ... with its backend opened now, so a tap that cannot be created fails the build.</summary>
    private static void AddNetDevices(VmConfig config, Action<IVirtioDevice, string> add, List<IDisposable> disposables, ILoggerFactory loggers)
    {
        for (int i = 0; i < config.Nets.Count; i++)
        {
            var spec = config.Nets[i];
            INetBackend backend = spec.Kind switch
            {
                NetBackendKind.Tap => new TapBackend(spec.IfName!),
                _ => new SlirpBackend(new SlirpOptions(), loggers.CreateLogger("SharpVmm.Slirp")),
            };
            var nic = new VirtioNet(backend, spec.Mac ?? NetSpec.DefaultMac(i));
            disposables.Add(nic);
            loggers.CreateLogger("SharpVmm.Machine").LogInformation("virtio-net{Index}: {Backend}, MAC {Mac}", i, backend.Description, nic.Mac);
            add(nic, $"virtio-net{i}");
        }
    }
}
