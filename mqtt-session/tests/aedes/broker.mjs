// A throwaway aedes broker for mqtt-session/tests/client_aedes.rs. It listens on 127.0.0.1
// on a port the system picks and prints `listening PORT` once it does. It never outlives
// the test: it exits when its stdin closes (the test holds the other end) and, whatever
// happens, after five minutes.
import { createServer } from 'node:net'
import { Aedes } from 'aedes'

const broker = await Aedes.createBroker()
const server = createServer(broker.handle)
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
setTimeout(() => process.exit(2), 5 * 60 * 1000).unref()
