package io.mosaicrs.spark.jni;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/**
 * Checks, on first use of the connector in a JVM, that the running Spark and
 * Scala are the ones this jar was built for (mosaicrs-build.properties,
 * written by the build). A jar for the wrong line fails here with a message
 * naming both versions and the jar to use, instead of a {@code
 * NoSuchMethodError} deep inside a task. Plain Java and reflection only, so
 * the check itself runs under any Scala version.
 */
public final class SparkLineCheck {
  /** The resource the build writes into each connector jar. */
  public static final String RESOURCE = "/mosaicrs-build.properties";

  private static volatile boolean passed;

  private SparkLineCheck() {}

  /** Throws {@link MosaicrsVersionException} unless this jar fits the running Spark. */
  public static void verify() {
    if (passed) {
      return;
    }
    synchronized (SparkLineCheck.class) {
      if (passed) {
        return;
      }
      Properties build = new Properties();
      try (InputStream in = SparkLineCheck.class.getResourceAsStream(RESOURCE)) {
        if (in == null) {
          throw new MosaicrsVersionException(
              "the mosaicrs connector jar has no " + RESOURCE + "; rebuild it with `make jar`");
        }
        build.load(in);
      } catch (IOException e) {
        throw new MosaicrsVersionException("cannot read " + RESOURCE + ": " + e);
      }
      String line = build.getProperty("spark.line", "?");
      String scala = build.getProperty("scala.binary", "?");
      String jar = build.getProperty("jar", "this mosaicrs jar");
      String sparkVersion = version("org.apache.spark.package$", "SPARK_VERSION");
      String scalaVersion = version("scala.util.Properties$", "versionNumberString");
      String message = mismatch(line, scala, jar, sparkVersion, scalaVersion);
      if (message != null) {
        throw new MosaicrsVersionException(message);
      }
      passed = true;
    }
  }

  /**
   * Why a jar built for Spark {@code line} / Scala {@code scala} cannot run on
   * Spark {@code sparkVersion} / Scala {@code scalaVersion}, or null if it can.
   */
  public static String mismatch(
      String line, String scala, String jar, String sparkVersion, String scalaVersion) {
    boolean sparkFits = sparkVersion.equals(line) || sparkVersion.startsWith(line + ".");
    boolean scalaFits = scalaVersion.equals(scala) || scalaVersion.startsWith(scala + ".");
    if (sparkFits && scalaFits) {
      return null;
    }
    String other =
        sparkVersion.startsWith("3.5")
            ? "mosaicrs-spark-3.5_2.12.jar"
            : sparkVersion.startsWith("4.") ? "mosaicrs-spark-4_2.13.jar" : null;
    return jar
        + " is built for Spark "
        + line
        + " with Scala "
        + scala
        + ", but this is Spark "
        + sparkVersion
        + " with Scala "
        + scalaVersion
        + (other != null && !other.equals(jar)
            ? "; use " + other + " instead"
            : "; no mosaicrs jar is built for this Spark (3.5.x and 4.x are supported)");
  }

  private static String version(String moduleClass, String method) {
    try {
      Class<?> c = Class.forName(moduleClass);
      Object module = c.getField("MODULE$").get(null);
      return String.valueOf(c.getMethod(method).invoke(module));
    } catch (ReflectiveOperationException | LinkageError e) {
      return "unknown (" + moduleClass + "." + method + ": " + e + ")";
    }
  }
}
