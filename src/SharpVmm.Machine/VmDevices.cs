using SharpVmm.Core.State;

namespace SharpVmm.Machine;

/// <summary>One device of a VM under its id, and what the machine may ask of it.</summary>
public readonly record struct VmDevice(string Id, object Device)
{
    /// <summary>The device's saved state, for snapshots and migration; null for a device that has none to save.</summary>
    public IStateful? State => Device as IStateful;

    /// <summary>What the device is, as a snapshot's header lists it: its state id, else its type's name.</summary>
    public string Kind => State?.StateId ?? Device.GetType().Name;
}

/// <summary>
/// The devices a VM was built with, by id ("com1", "virtio-blk0", ...), in build order. The monitor finds the devices
/// its commands act on here (query-block, balloon), and snapshots and migration walk it for state sections, so
/// nothing outside the builder needs to know how the machine was assembled.
/// </summary>
public sealed class VmDevices
{
    private readonly List<VmDevice> _items = [];
    private readonly object _gate = new();

    /// <summary>
    /// Where COM1 goes (stdio, a file, a socket, a pty), for the monitor's query-chardev. Not one of the devices:
    /// a backend has no guest-visible state, and snapshots and migration save every device.
    /// </summary>
    public SharpVmm.Devices.Serial.ICharBackend? SerialBackend { get; set; }

    /// <summary>Adds a device under an id unique within the VM.</summary>
    public void Add(string id, object device)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentNullException.ThrowIfNull(device);
        lock (_gate)
        {
            foreach (var (existing, _) in _items)
                if (existing == id) throw new ArgumentException($"device id '{id}' is already taken", nameof(id));
            _items.Add(new VmDevice(id, device));
        }
    }

    /// <summary>Every device, in the order it was added.</summary>
    public IReadOnlyList<VmDevice> All
    {
        get { lock (_gate) return [.. _items]; }
    }

    /// <summary>The devices of one type (or implementing one interface), in build order, with their ids.</summary>
    public IReadOnlyList<(string Id, T Device)> OfType<T>() where T : class
    {
        var list = new List<(string, T)>();
        lock (_gate)
            foreach (var (id, d) in _items)
                if (d is T t) list.Add((id, t));
        return list;
    }

    public object? Find(string id)
    {
        lock (_gate)
            foreach (var (existing, d) in _items)
                if (existing == id) return d;
        return null;
    }
}
