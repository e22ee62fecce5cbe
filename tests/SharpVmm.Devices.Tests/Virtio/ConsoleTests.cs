using System.Text;
using SharpVmm.Devices.Serial;
using SharpVmm.Devices.Virtio;
using SharpVmm.Devices.Virtio.Console;

namespace SharpVmm.Devices.Tests.Virtio;

public sealed class ConsoleTests : IDisposable
{
    private sealed class Backend : ICharBackend
    {
        public readonly MemoryStream Output = new();
        public Action<ReadOnlySpan<byte>>? Input;
        public void Write(ReadOnlySpan<byte> data) => Output.Write(data);
        public void Start(Action<ReadOnlySpan<byte>> onInput) => Input = onInput;
        public void Dispose() { }
        public string Text => Encoding.ASCII.GetString(Output.ToArray());
    }

    private readonly Ring _rx = new(8);
    private readonly Ring _tx;
    private readonly Backend _backend = new();
    private readonly VirtioConsole _console;
    private readonly MmioDriver _d;

    public ConsoleTests()
    {
        _tx = new Ring(8, _rx.Memory, 0x4000, 0x5000, 0x6000);
        _console = new VirtioConsole(_backend, 100, 40);
        _d = new MmioDriver(new VirtioMmioTransport(_console, _rx.Memory, new LevelLine()));
        Assert.True(_d.Negotiate(_d.DeviceFeatures()));
        _d.SetupQueue(0, 8);
        _d.SetupQueue(1, 8, 0x4000, 0x5000, 0x6000);
        _d.SetStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);
    }

    public void Dispose()
    {
        _tx.Dispose();
        _rx.Dispose();
    }

    [Fact]
    public void Transmit_goes_to_the_backend()
    {
        _rx.Memory.Write(0x10000, "hello, "u8);
        _rx.Memory.Write(Ring.HighBase, "world\n"u8);
        _tx.SetDesc(0, 0x10000, 7, Ring.Next, 1);
        _tx.SetDesc(1, Ring.HighBase, 6);
        _tx.Offer(0);
        _d.Notify(1);
        Assert.Equal("hello, world\n", _backend.Text);
        Assert.Equal(1, _tx.UsedIdx);
    }

    [Fact]
    public void Input_waits_for_receive_buffers_and_buffers_wait_for_input()
    {
        _rx.SetDesc(0, 0x20000, 4, Ring.Write);
        _rx.Offer(0);
        _d.Notify(0);
        Assert.Equal(0, _rx.UsedIdx); // no input yet: the buffer is held

        _backend.Input!("abcdef"u8);
        Assert.Equal(1, _rx.UsedIdx);
        Assert.Equal((0u, 4u), _rx.UsedElem(0));
        Assert.Equal("abcd"u8.ToArray(), _rx.Memory.GetReadOnlySpan(0x20000, 4).ToArray());

        _rx.SetDesc(1, 0x21000, 16, Ring.Write);
        _rx.Offer(1);
        _d.Notify(0);
        Assert.Equal((1u, 2u), _rx.UsedElem(1));
        Assert.Equal("ef"u8.ToArray(), _rx.Memory.GetReadOnlySpan(0x21000, 2).ToArray());
    }

    [Fact]
    public void Config_and_emergency_write()
    {
        Span<byte> b = stackalloc byte[4];
        _d.Transport.Read(VirtioMmioRegisters.Config, b);
        Assert.Equal([100, 0, 40, 0], b.ToArray());
        _d.Transport.Write(VirtioMmioRegisters.Config + 8, [(byte)'!', 0, 0, 0]);
        Assert.Equal("!", _backend.Text);
    }

    [Fact]
    public void Input_after_reset_is_not_delivered()
    {
        _d.Write(VirtioMmioRegisters.Status, 0);
        _backend.Input!("zz"u8); // the old context is gone: nothing touches the rings
        Assert.Equal(0, _rx.UsedIdx);
    }
}
