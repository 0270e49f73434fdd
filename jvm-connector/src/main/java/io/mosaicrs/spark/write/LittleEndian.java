package io.mosaicrs.spark.write;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Little-endian stores into a {@code byte[]} at a byte offset, as Arrow lays
 * out fixed-width values. Each compiles to one bounds check and one store
 * (the JIT intrinsifies array-view {@link VarHandle}s), where a direct
 * {@code ByteBuffer} adds a scope and an index check per value.
 *
 * <pre>{@code
 * byte[] values = new byte[8];
 * LittleEndian.putFloat(values, 4, 1.5f);   // bytes 4..7
 * }</pre>
 */
public final class LittleEndian {
  private static final VarHandle SHORT =
      MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle INT =
      MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle LONG =
      MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle FLOAT =
      MethodHandles.byteArrayViewVarHandle(float[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle DOUBLE =
      MethodHandles.byteArrayViewVarHandle(double[].class, ByteOrder.LITTLE_ENDIAN);

  private LittleEndian() {}

  public static void putShort(byte[] bytes, int at, short v) {
    SHORT.set(bytes, at, v);
  }

  public static void putInt(byte[] bytes, int at, int v) {
    INT.set(bytes, at, v);
  }

  public static void putLong(byte[] bytes, int at, long v) {
    LONG.set(bytes, at, v);
  }

  public static void putFloat(byte[] bytes, int at, float v) {
    FLOAT.set(bytes, at, v);
  }

  public static void putDouble(byte[] bytes, int at, double v) {
    DOUBLE.set(bytes, at, v);
  }

  public static int getInt(byte[] bytes, int at) {
    return (int) INT.get(bytes, at);
  }
}
