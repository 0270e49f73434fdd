package io.mosaicrs.spark.read;

import java.io.Serializable;
import java.util.Objects;

/**
 * Which version of a dataset a read sees: the newest ({@link #LATEST}), a
 * version number ({@code versionAsOf}), or the newest committed at or before
 * a time ({@code timestampAsOf}).
 */
public final class TimeTravel implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The newest version. */
  public static final TimeTravel LATEST = new TimeTravel(-1, -1);

  private final long version;
  private final long asOfMs;

  private TimeTravel(long version, long asOfMs) {
    this.version = version;
    this.asOfMs = asOfMs;
  }

  /** Version {@code version} (0 is the first commit). */
  public static TimeTravel ofVersion(long version) {
    if (version < 0) {
      throw new io.mosaicrs.spark.jni.MosaicrsInvalidInputException(
          "versionAsOf must be a version number, 0 or more; got " + version);
    }
    return new TimeTravel(version, -1);
  }

  /** The newest version committed at or before {@code millis} since the epoch. */
  public static TimeTravel asOf(long millis) {
    if (millis < 0) {
      throw new io.mosaicrs.spark.jni.MosaicrsInvalidInputException(
          "timestampAsOf must not be before 1970; got " + millis + " ms");
    }
    return new TimeTravel(-1, millis);
  }

  /** The version number, or -1. */
  long version() {
    return version;
  }

  /** The time in milliseconds since the epoch, or -1. */
  long asOfMs() {
    return asOfMs;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof TimeTravel
        && ((TimeTravel) other).version == version
        && ((TimeTravel) other).asOfMs == asOfMs;
  }

  @Override
  public int hashCode() {
    return Objects.hash(version, asOfMs);
  }

  @Override
  public String toString() {
    return version >= 0 ? "version " + version : asOfMs >= 0 ? "as of " + asOfMs + " ms" : "latest";
  }
}
