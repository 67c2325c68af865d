// The made-up sensor readings of a building: 30 sensors, one reading a
// minute each, the same values for the same customer, building, sensor and
// minute on every run and every machine.
//
// All arithmetic is on integers (tenths of a degree, tenths of a percent)
// and 32-bit hashes, so another implementation can reproduce every value
// exactly (tests/building-sensors/ does, in Python):
//
//   seed      = FNV-1a 32 of "CUSTOMER_ID/BUILDING_ID" (UTF-8)
//   m         = minutes since 1970-01-01T00:00:00Z
//   h         = mix32((seed + (i + 1) * 0x9E3779B1 + m) mod 2^32), i = 0..29
//   local     = (m + curve_utc_offset_minutes) mod 1440, in 0..1439
//   T (tenths of degC) = base(local) + ((7 i) mod 11) - 5 + (h mod 7) - 3
//                        for the server room (i = 4): 270 + (h mod 7) - 3
//   H (tenths of %)    = 380 + ((h >>> 8) mod 171)
//
// base(local) is a heating day: 190 at night, rising to 214 from 05:30 to
// 07:30, to 226 by 15:00, falling to 218 by 18:00 and back to 190 by
// 22:00; between two points it is a + trunc((b - a) (local - t0) / (t1 - t0)).
// mix32 is the "lowbias32" finaliser: x ^= x >> 16; x *= 0x7feb352d;
// x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16 (all mod 2^32).

export const SENSOR_COUNT = 30;
const ZONES = ['North', 'East', 'South', 'West', 'Core'];
const SERVER_ROOM = 4;

export function fnv1a32(text) {
    let h = 0x811c9dc5;
    for (const byte of Buffer.from(text, 'utf8')) {
        h ^= byte;
        h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h >>> 0;
}

export function mix32(x) {
    x = (x ^ (x >>> 16)) >>> 0;
    x = Math.imul(x, 0x7feb352d) >>> 0;
    x = (x ^ (x >>> 15)) >>> 0;
    x = Math.imul(x, 0x846ca68b) >>> 0;
    x = (x ^ (x >>> 16)) >>> 0;
    return x;
}

// [minute of the day, tenths of a degree]: straight lines between them.
const CURVE = [
    [0, 190], [330, 190], [450, 214], [900, 226], [1080, 218], [1320, 190], [1440, 190],
];

export function base(local) {
    for (let k = 1; k < CURVE.length; k++) {
        const [t1, b] = CURVE[k];
        if (local < t1) {
            const [t0, a] = CURVE[k - 1];
            return a + Math.trunc(((b - a) * (local - t0)) / (t1 - t0));
        }
    }
    return CURVE[CURVE.length - 1][1];
}

export function sensorId(i) {
    return `T${String(i + 1).padStart(2, '0')}`;
}

export function sensorLoc(i) {
    if (i === SERVER_ROOM) return 'Floor 1 / Server room';
    return `Floor ${Math.floor(i / 5) + 1} / ${ZONES[i % 5]}`;
}

export function sensorInfo(i, buildingId) {
    return {
        sensor_id: sensorId(i),
        sensor_loc: sensorLoc(i),
        building_id: buildingId,
        floor: Math.floor(i / 5) + 1,
        interval_seconds: 60,
        active: true,
    };
}

// "21.4" for 214; a table for the values readings take.
const TENTHS = Array.from({ length: 1000 }, (_, t) => `${Math.trunc(t / 10)}.${t % 10}`);

// The tenths of one reading: [temperature, humidity].
export function reading(seed, offsetMinutes, i, m) {
    const h = mix32((seed + Math.imul(i + 1, 0x9e3779b1) + m) >>> 0);
    const local = (((m + offsetMinutes) % 1440) + 1440) % 1440;
    const noise = (h % 7) - 3;
    const t = i === SERVER_ROOM ? 270 + noise : base(local) + ((7 * i) % 11) - 5 + noise;
    const hum = 380 + ((h >>> 8) % 171);
    return [t, hum];
}

function isoMinute(m) {
    return new Date(m * 60000).toISOString().replace('.000Z', 'Z');
}

// Every reading with fromMinute <= m < toMinute, oldest first, sensors in
// order within a minute, as the text of the elements of GetReadingsResponse
// (element names in the default namespace the caller declares).
export function readingsXml(customer, fromMinute, toMinute) {
    const seed = fnv1a32(`${customer.customer_id}/${customer.building_id}`);
    const offset = customer.curve_utc_offset_minutes;
    const head = `<customer_id>${customer.customer_id}</customer_id><building_id>${customer.building_id}</building_id>`;
    const sensors = [];
    for (let i = 0; i < SENSOR_COUNT; i++) {
        sensors.push(`<sensor_id>${sensorId(i)}</sensor_id><sensor_loc>${sensorLoc(i)}</sensor_loc>`);
    }
    const parts = [];
    for (let m = fromMinute; m < toMinute; m++) {
        const ts = `<timestamp>${isoMinute(m)}</timestamp>`;
        for (let i = 0; i < SENSOR_COUNT; i++) {
            const [t, hum] = reading(seed, offset, i, m);
            parts.push(`<reading>${head}${sensors[i]}${ts}<temperature>${TENTHS[t]}</temperature><humidity>${TENTHS[hum]}</humidity></reading>`);
        }
    }
    return parts.join('');
}
