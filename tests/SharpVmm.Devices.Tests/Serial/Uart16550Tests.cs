using SharpVmm.Core.Interrupts;
using SharpVmm.Devices.Serial;

namespace SharpVmm.Devices.Tests.Serial;

public sealed class Uart16550Tests
{
    private sealed class Capture : ICharBackend
    {
        public readonly List<byte> Out = [];
        public Action<ReadOnlySpan<byte>>? Input;
        public void Write(ReadOnlySpan<byte> data) { lock (Out) Out.AddRange(data.ToArray()); }
        public void Start(Action<ReadOnlySpan<byte>> onInput) => Input = onInput;
        public void Dispose() { }
    }

    private sealed class Line : IInterruptLine
    {
        public bool Level;
        public int Raises;
        public void Raise() { Level = true; Raises++; }
        public void Lower() => Level = false;
        public void Pulse() { Raise(); Lower(); }
    }

    private static byte Rd(Uart16550 u, int reg) { Span<byte> b = stackalloc byte[1]; u.Read((ulong)reg, b); return b[0]; }
    private static void Wr(Uart16550 u, int reg, byte v) => u.Write((ulong)reg, [v]);

    [Fact]
    public void Bytes_written_to_THR_reach_the_backend_and_LSR_always_shows_an_empty_transmitter()
    {
        var be = new Capture();
        var u = new Uart16550(be, null);
        foreach (var c in "hi\n"u8.ToArray()) Wr(u, 0, c);
        Assert.Equal("hi\n"u8.ToArray(), be.Out);
        Assert.Equal(0x60, Rd(u, 5) & 0x61);
    }

    [Fact]
    public void Received_bytes_set_data_ready_and_raise_the_interrupt_when_enabled()
    {
        var be = new Capture();
        var irq = new Line();
        var u = new Uart16550(be, irq);
        Wr(u, 4, 0x08); // OUT2: interrupts reach the pin
        Wr(u, 1, 0x01); // IER: received data
        be.Input!("ab"u8);
        Assert.True(irq.Level);
        Assert.Equal(0x01, Rd(u, 5) & 0x01);
        Assert.Equal(0x04, Rd(u, 2) & 0x0F); // IIR: received data available
        Assert.Equal((byte)'a', Rd(u, 0));
        Assert.Equal((byte)'b', Rd(u, 0));
        Assert.Equal(0, Rd(u, 5) & 0x01);
        Assert.False(irq.Level);
        Assert.Equal(0x01, Rd(u, 2) & 0x0F); // no interrupt pending
    }

    [Fact]
    public void THRE_interrupt_is_raised_on_enable_and_cleared_by_reading_IIR()
    {
        var irq = new Line();
        var u = new Uart16550(new Capture(), irq);
        Wr(u, 4, 0x08);
        Wr(u, 1, 0x02);
        Assert.True(irq.Level);
        Assert.Equal(0x02, Rd(u, 2) & 0x0F);
        Assert.False(irq.Level);
        Wr(u, 0, (byte)'x'); // sending empties the holding register again
        Assert.True(irq.Level);
    }

    [Fact]
    public void Without_OUT2_the_interrupt_never_reaches_the_pin()
    {
        var irq = new Line();
        var be = new Capture();
        var u = new Uart16550(be, irq);
        Wr(u, 1, 0x03);
        be.Input!("z"u8);
        Assert.Equal(0, irq.Raises);
    }

    [Fact]
    public void Divisor_latch_scratch_and_line_control_hold_their_values()
    {
        var u = new Uart16550(new Capture(), null);
        Wr(u, 3, 0x83); // DLAB + 8N1
        Wr(u, 0, 0x01);
        Wr(u, 1, 0x00);
        Assert.Equal(0x01, Rd(u, 0));
        Assert.Equal(0x00, Rd(u, 1));
        Wr(u, 3, 0x03);
        Assert.Equal(0x03, Rd(u, 3));
        Wr(u, 7, 0xA5);
        Assert.Equal(0xA5, Rd(u, 7));
    }

    [Fact]
    public void Loopback_returns_sent_bytes_and_mirrors_modem_control_in_modem_status()
    {
        var be = new Capture();
        var u = new Uart16550(be, null);
        Wr(u, 4, 0x1A); // loop + OUT2 + RTS: the probe Linux's 8250 driver makes
        Assert.Equal(0x90, Rd(u, 6) & 0xF0);
        Wr(u, 0, 0x42);
        Assert.Empty(be.Out);
        Assert.Equal(0x42, Rd(u, 0));
        Wr(u, 4, 0x00);
        Assert.Equal(0xB0, Rd(u, 6) & 0xF0);
    }

    [Fact]
    public void Overflowing_the_receive_buffer_reports_an_overrun_and_keeps_what_fit()
    {
        var be = new Capture();
        var u = new Uart16550(be, null);
        be.Input!(new byte[Uart16550.RxCapacity + 10]);
        Assert.Equal(0x03, Rd(u, 5) & 0x03); // DR + OE
        Assert.Equal(0x01, Rd(u, 5) & 0x03); // OE clears on read
    }

    [Fact]
    public void FIFO_control_can_clear_the_receiver_and_IIR_reports_FIFOs_enabled()
    {
        var be = new Capture();
        var u = new Uart16550(be, null);
        be.Input!("abc"u8);
        Wr(u, 2, 0x07);
        Assert.Equal(0, Rd(u, 5) & 0x01);
        Assert.Equal(0xC0, Rd(u, 2) & 0xC0);
    }
}
