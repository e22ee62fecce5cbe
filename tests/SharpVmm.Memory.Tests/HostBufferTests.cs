namespace SharpVmm.Memory.Tests;

public sealed class HostBufferTests
{
    [Fact]
    public void A_buffer_holds_what_is_written_and_is_gone_once_disposed()
    {
        var buffer = new HostBuffer(3 << 20);
        var span = buffer.GetSpan();
        Assert.Equal(3 << 20, span.Length);
        Assert.True(span.IndexOfAnyExcept((byte)0) < 0); // fresh anonymous pages read as zero
        span.Fill(0x5A);
        Assert.Equal(0x5A, buffer.Memory.Span[(3 << 20) - 1]);
        ((IDisposable)buffer).Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.GetSpan());
        ((IDisposable)buffer).Dispose(); // a second dispose is harmless
    }

    [Fact]
    public void An_empty_buffer_needs_no_mapping()
    {
        using IDisposable buffer = new HostBuffer(0);
        Assert.Equal(0, ((HostBuffer)buffer).GetSpan().Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => new HostBuffer(-1));
    }
}
