using VirtFs.Virtio9p.Device;

namespace VirtFs.Virtio9p.Tests.Device;

public class TagTrackerTests
{
    [Fact]
    public void Flush_of_an_idle_tag_is_answered_at_once()
    {
        var tags = new TagTracker<string>();
        Assert.False(tags.TryParkFlush(5, "flush"));
    }

    [Fact]
    public void Flush_waits_for_every_request_with_its_tag()
    {
        var tags = new TagTracker<string>();
        tags.Begin(5);
        tags.Begin(5); // a hostile guest may reuse a tag while it is in flight
        Assert.True(tags.TryParkFlush(5, "f1"));
        Assert.Null(tags.End(5));
        Assert.Equal(["f1"], tags.End(5)!);
        Assert.Null(tags.End(5)); // never below zero
        Assert.False(tags.TryParkFlush(5, "f2"));
    }
}
