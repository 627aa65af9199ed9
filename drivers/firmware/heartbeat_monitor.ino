// grasprt heartbeat monitor: an external watchdog that opens the robot's e-stop loop
// when grasprt stops beating. Reference sketch for an Arduino-class board; it is not
// compiled in CI. Protocol and wiring: docs/serial.md. The Python emulator that the
// tests run against (tests/drivers/serial_emulators.py) follows this state machine.
//
// Frame, 4 bytes: 0xA5 | seq | flags | CRC-8 (poly 0x07, init 0x00) over the first 3.
// flags bit0 HEALTHY: a healthy cycle; bit1 HOLDING: grasprt has held the arm and is
// stopping on purpose (disarm); neither bit: trip now.
//
// States: DISARMED (relay closed, waiting for the first beat) -> ARMED on a healthy
// beat -> TRIPPED when no fresh beat arrives within TIMEOUT_MS, or on a trip frame.
// TRIPPED opens the relay and latches, across resets and power cycles (EEPROM), until
// the reset button is held for RESET_HOLD_MS.

#include <EEPROM.h>

const uint8_t SYNC = 0xA5;
const uint8_t FLAG_HEALTHY = 0x01;
const uint8_t FLAG_HOLDING = 0x02;

const unsigned long TIMEOUT_MS = 300;     // 3 missed beats at 10 Hz
const unsigned long RESET_HOLD_MS = 1000; // a deliberate press, not a bump
const long BAUD = 115200;

// Relay coil driven HIGH = e-stop loop closed (robot may run). Reset, brown-out, a
// crashed sketch or a cut cable all leave the coil unpowered: the loop opens (fail-safe).
const int RELAY_PIN = 7;
const int RESET_BUTTON_PIN = 2; // to GND, internal pull-up
const int TRIP_LED_PIN = 13;

const int LATCH_ADDR = 0;
const uint8_t LATCH_TRIPPED = 0x5A;

enum State { DISARMED, ARMED, TRIPPED };

State state = DISARMED;
unsigned long lastBeatMs = 0;
int lastSeq = -1;
uint8_t frame[4];
uint8_t frameLen = 0;
unsigned long buttonDownSinceMs = 0;
bool buttonDown = false;

uint8_t crc8(const uint8_t *data, uint8_t len) {
  uint8_t crc = 0;
  for (uint8_t i = 0; i < len; i++) {
    crc ^= data[i];
    for (uint8_t b = 0; b < 8; b++) {
      crc = (crc & 0x80) ? (uint8_t)((crc << 1) ^ 0x07) : (uint8_t)(crc << 1);
    }
  }
  return crc;
}

void setRelay(bool closed) {
  digitalWrite(RELAY_PIN, closed ? HIGH : LOW);
  digitalWrite(TRIP_LED_PIN, closed ? LOW : HIGH);
}

void trip() {
  state = TRIPPED;
  setRelay(false);
  // Persist first thing: the host opening the port resets many boards (DTR), and a
  // reset must not clear a trip.
  if (EEPROM.read(LATCH_ADDR) != LATCH_TRIPPED) {
    EEPROM.write(LATCH_ADDR, LATCH_TRIPPED);
  }
}

void onFrame(uint8_t seq, uint8_t flags) {
  if (state == TRIPPED) {
    return;
  }
  if (flags & FLAG_HOLDING) {
    state = DISARMED;
  } else if (flags & FLAG_HEALTHY) {
    // A repeated sequence number is a replay (a stuck buffer), not a sign of life.
    if (seq != lastSeq) {
      lastBeatMs = millis();
      state = ARMED;
    }
  } else {
    trip();
  }
  lastSeq = seq;
}

void onByte(uint8_t b) {
  if (frameLen == 0 && b != SYNC) {
    return;
  }
  frame[frameLen++] = b;
  if (frameLen < 4) {
    return;
  }
  if (crc8(frame, 3) == frame[3]) {
    onFrame(frame[1], frame[2]);
    frameLen = 0;
    return;
  }
  // Bad CRC: resynchronise on the next sync byte inside the bytes already taken.
  uint8_t start = 1;
  while (start < 4 && frame[start] != SYNC) {
    start++;
  }
  uint8_t kept = 0;
  for (uint8_t i = start; i < 4; i++) {
    frame[kept++] = frame[i];
  }
  frameLen = kept;
}

void pollResetButton() {
  bool down = digitalRead(RESET_BUTTON_PIN) == LOW;
  unsigned long now = millis();
  if (down && !buttonDown) {
    buttonDownSinceMs = now;
  }
  buttonDown = down;
  if (down && state == TRIPPED && now - buttonDownSinceMs >= RESET_HOLD_MS) {
    EEPROM.write(LATCH_ADDR, 0);
    state = DISARMED;
    lastSeq = -1;
    setRelay(true);
  }
}

void setup() {
  pinMode(RELAY_PIN, OUTPUT);
  pinMode(TRIP_LED_PIN, OUTPUT);
  pinMode(RESET_BUTTON_PIN, INPUT_PULLUP);
  setRelay(false);
  Serial.begin(BAUD);
  if (EEPROM.read(LATCH_ADDR) == LATCH_TRIPPED) {
    state = TRIPPED;
  } else {
    state = DISARMED;
    setRelay(true);
  }
}

void loop() {
  while (Serial.available() > 0) {
    onByte((uint8_t)Serial.read());
  }
  // Unsigned subtraction stays right across the millis() wrap (~49 days).
  if (state == ARMED && millis() - lastBeatMs > TIMEOUT_MS) {
    trip();
  }
  pollResetButton();
}
